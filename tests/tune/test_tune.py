"""dnnops tune: a study of runs on Optuna, pruned on validation scores, resumed, shared by
two processes on PostgreSQL, and its best trial registered like a training."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, text

from tests.conftest import CliResult, subprocess_env
from tests.userdata import prices_frame, project_file, write_csv

SPACE = {
    # one learning rate that cannot learn in a few epochs: its trials trail the median
    "train.lr": {"choices": [0.02, 0.000001]},
    "model.params.hidden": {"choices": [[16], [32, 16]]},
}
TUNE = {"space": SPACE, "startup_trials": 1, "warmup_epochs": 1, "seed": 0}


def _project(tmp_path: Path, **tune: object) -> Path:
    source = write_csv(prices_frame(rows=300), tmp_path / "prices.csv")
    return project_file(
        tmp_path / "dnnops.yaml",
        "prices",
        source,
        "price",
        task="regression",
        train={"epochs": 6, "batch_size": 32, "seed": 0},
        evaluate={"baseline": "trivial"},
        tune={**TUNE, **tune},
    )


def test_a_study_prunes_trials_resumes_and_registers_its_best(
    tmp_path: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    config = _project(tmp_path)
    first = cli("tune", "-c", str(config), "--trials", "6", "--json")
    assert first.code == 0, first.err
    study = first.json()
    states = [t["state"] for t in study["trials"]]
    assert len(states) == 6 and "pruned" in states and "complete" in states
    runs = {r["id"]: r for r in cli("runs", "list", "--json").json()}
    assert {t["run_id"] for t in study["trials"]} == set(runs)  # each trial is a run
    for trial in study["trials"]:
        run = runs[trial["run_id"]]
        assert run["status"] == ("pruned" if trial["state"] == "pruned" else "finished")
        assert run["params"]["train"]["lr"] == trial["params"]["train.lr"]
    pruned = [t for t in study["trials"] if t["state"] == "pruned"]
    assert any(t["params"]["train.lr"] == 0.000001 for t in pruned)
    assert all(len(runs_show(cli, t["run_id"])) < 6 for t in pruned)  # stopped early
    best = study["best"]
    assert best["state"] == "complete" and best["params"]["train.lr"] == 0.02
    assert study["registered"] == "prices@1"
    shown = cli("models", "show", "prices@1", "--json").json()
    assert shown["run_id"] == best["run_id"]
    assert (home / "tuning.db").is_file()  # beside dnnops.db, never in its tables
    crossed = cli("eval", "prices@1", "--cv", "3", "--json")
    assert crossed.code == 0, crossed.err
    folds = crossed.json()["per_fold"]
    assert [f["fold"] for f in folds] == [0, 1, 2] and sum(f["samples"] for f in folds) == 300
    mae = crossed.json()["summary"]["mae"]
    assert mae["min"] <= mae["mean"] <= mae["max"] and mae["std"] >= 0
    again = cli("tune", "-c", str(config), "--trials", "2", "--json")
    assert again.code == 0, again.err
    resumed = again.json()
    assert [t["number"] for t in resumed["trials"]] == list(range(8))  # the same study
    if resumed["best"]["run_id"] == best["run_id"]:  # the same best: not registered twice
        assert resumed["registered"] is None and "registered already" in resumed["note"]
    else:  # a better trial: registered as the next version
        assert resumed["registered"] == "prices@2"


def runs_show(cli: Callable[..., CliResult], run_id: str) -> list[dict[str, float]]:
    epochs: list[dict[str, float]] = cli("runs", "show", run_id, "--json").json()["epochs"]
    return epochs


def test_a_space_with_a_key_the_project_file_lacks_is_refused_before_any_trial(
    tmp_path: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    config = _project(tmp_path, space={"train.learning_rate": {"low": 0.001, "high": 0.1}})
    refused = cli("tune", "-c", str(config), "--trials", "2")
    assert refused.code == 2 and "learning_rate" in refused.err
    assert cli("runs", "list", "--json").json() == []
    bad_metric = _project(tmp_path, metric="valid_accuracy")
    refused = cli("tune", "-c", str(bad_metric), "--trials", "2")
    assert refused.code == 2 and "not measured for task: regression" in refused.err


def test_two_processes_on_postgresql_share_one_study(
    tmp_path: Path, postgres: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.postgres import create_database

    url = create_database(postgres, "tune_shared")
    config = _project(tmp_path)
    project = yaml.safe_load(config.read_text())
    project["tune"]["pruner"] = "none"
    config.write_text(yaml.safe_dump(project))
    env = {**subprocess_env(tmp_path / "home"), "DNNOPS_DB_URL": url}
    command = [sys.executable, "-m", "dnnops", "tune", "-c", str(config), "--trials", "2"]
    workers = [
        subprocess.Popen(
            [*command, "--json"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    answers = [w.communicate(timeout=600) for w in workers]
    for worker, (_, err) in zip(workers, answers, strict=True):
        assert worker.returncode == 0, err
    last = max((json.loads(out) for out, _ in answers), key=lambda s: len(s["trials"]))
    assert sorted(t["number"] for t in last["trials"]) == [0, 1, 2, 3]
    assert "schema dnnops_tuning" in last["storage"]
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            runs = connection.execute(text("SELECT count(*) FROM runs")).scalar_one()
            trials = connection.execute(
                text("SELECT count(*) FROM dnnops_tuning.trials")
            ).scalar_one()
            ours = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    finally:
        engine.dispose()
    assert runs == 4 and trials == 4
    assert len(ours) == 1  # dnnops's own migration history, untouched by Optuna's
