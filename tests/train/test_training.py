"""Training end to end on builtin sets: repeatability, exact resume, runs in the store."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import load_file

from tests.conftest import CliResult, subprocess_env, write_project

# A run long enough to be killed part way, with dropout (so the RNG state matters) and
# checkpoints that land mid-epoch (so the data-order position matters).
RESUMABLE = {
    "model": {"arch": "mlp", "params": {"hidden": [64], "dropout": 0.2}},
    "train": {
        "epochs": 20,
        "batch_size": 64,
        "lr": 0.002,
        "seed": 11,
        "warmup_steps": 10,
        "checkpoint_every": "7 steps",
        "keep_checkpoints": 2,
    },
}


def _train_json(cli: Callable[..., CliResult], *args: str) -> dict[str, Any]:
    result = cli("train", *args, "--json")
    assert result.code == 0, result.err
    payload: dict[str, Any] = result.json()
    return payload


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The uninterrupted run every interrupted one must reproduce exactly."""
    folder = tmp_path_factory.mktemp("reference")
    config = write_project(folder, **RESUMABLE)
    done = subprocess.run(
        [sys.executable, "-m", "dnnops", "train", "-c", str(config), "--json"],
        env=subprocess_env(folder / "home"),
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    payload: dict[str, Any] = json.loads(done.stdout)
    return payload


def _start_training(config: Path, home: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "dnnops", "train", "-c", str(config), "--quiet"],
        env=subprocess_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_checkpoint(home: Path, process: subprocess.Popen[str], min_step: int) -> Path:
    """The run folder, once its checkpoint pointer has reached ``min_step``."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for pointer in home.glob("runs/*/checkpoints/latest.json"):
            try:
                if json.loads(pointer.read_text())["step"] >= min_step:
                    return pointer.parents[1]
            except (json.JSONDecodeError, OSError):
                pass  # replaced atomically, but a reader can race the first write's rename
        assert process.poll() is None, (
            f"training ended before a checkpoint: {process.communicate()}"
        )
        time.sleep(0.005)
    raise AssertionError("no checkpoint within 120 s")


@pytest.mark.slow
def test_sigkill_then_resume_gives_identical_weights_and_metrics(
    home: Path, cli: Callable[..., CliResult], reference: dict[str, Any]
) -> None:
    config = write_project(home.parent, **RESUMABLE)
    process = _start_training(config, home)
    run_dir = _wait_for_checkpoint(home, process, min_step=14)
    process.kill()
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    run_id = run_dir.name
    assert cli("runs", "show", run_id, "--json").json()["status"] == "running"  # killed mid-run

    resumed = _train_json(cli, "--resume", run_id)

    assert resumed["run_id"] == run_id
    assert resumed["weights_sha256"] == reference["weights_sha256"]
    assert resumed["metrics"] == reference["metrics"]
    record = cli("runs", "show", run_id, "--json").json()
    assert record["status"] == "finished"
    assert [e["epoch"] for e in record["epochs"]] == [float(i) for i in range(20)]


@pytest.mark.slow
def test_sigterm_checkpoints_exits_cleanly_and_resumes_exactly(
    home: Path, cli: Callable[..., CliResult], reference: dict[str, Any]
) -> None:
    config = write_project(home.parent, **RESUMABLE)
    process = _start_training(config, home)
    run_dir = _wait_for_checkpoint(home, process, min_step=7)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM
    assert f"dnnops train --resume {run_dir.name}" in err
    assert "Traceback" not in err
    assert cli("runs", "show", run_dir.name, "--json").json()["status"] == "interrupted"

    resumed = _train_json(cli, "--resume", run_dir.name)
    assert resumed["weights_sha256"] == reference["weights_sha256"]


def test_same_seed_gives_the_same_weights_bit_for_bit(
    home: Path, cli: Callable[..., CliResult]
) -> None:
    config = write_project(home.parent)
    first = _train_json(cli, "-c", str(config))
    second = _train_json(cli, "-c", str(config))
    assert first["run_id"] != second["run_id"]
    assert first["weights_sha256"] == second["weights_sha256"]
    assert first["metrics"] == second["metrics"]


def test_gradient_accumulation_matches_the_large_batch(
    home: Path, cli: Callable[..., CliResult]
) -> None:
    base = {"epochs": 2, "lr": 0.003, "seed": 5, "grad_clip": None}
    model = {"arch": "mlp", "params": {"hidden": [32], "dropout": 0.0}}
    big = _train_json(
        cli, "-c", str(write_project(home.parent, model=model, train={**base, "batch_size": 64}))
    )
    small = _train_json(
        cli,
        "-c",
        str(
            write_project(
                home.parent, model=model, train={**base, "batch_size": 32, "grad_accum": 2}
            )
        ),
    )
    assert big["metrics"]["steps"] == small["metrics"]["steps"]
    big_w = load_file(str(home / "runs" / big["run_id"] / "model.safetensors"))
    small_w = load_file(str(home / "runs" / small["run_id"] / "model.safetensors"))
    for name, tensor in big_w.items():
        np.testing.assert_allclose(tensor, small_w[name], atol=1e-5)


def test_bf16_autocast_trains(home: Path, cli: Callable[..., CliResult]) -> None:
    config = write_project(home.parent, train={"epochs": 4, "precision": "bf16", "lr": 0.003})
    metrics = _train_json(cli, "-c", str(config))["metrics"]
    assert metrics["test_accuracy"] > 0.85


def test_early_stopping_stops_and_keeps_the_best(home: Path, cli: Callable[..., CliResult]) -> None:
    train = {
        "epochs": 40,
        "lr": 0.05,
        "early_stopping": {"metric": "valid_accuracy", "patience": 2},
    }
    payload = _train_json(cli, "-c", str(write_project(home.parent, train=train)))
    record = cli("runs", "show", payload["run_id"], "--json").json()
    assert len(record["epochs"]) < 40
    best = max(e["valid_accuracy"] for e in record["epochs"])
    assert payload["metrics"]["valid_accuracy"] <= best


@pytest.mark.parametrize(
    ("source", "model", "floor"),
    [
        (
            "builtin:wine",
            {"arch": "transformer", "params": {"d_model": 16, "heads": 2, "layers": 1}},
            0.8,
        ),
        ("builtin:breast_cancer", {"arch": "mlp"}, 0.9),
    ],
)
def test_other_builtin_sets_and_architectures_learn(
    source: str, model: dict[str, Any], floor: float, home: Path, cli: Callable[..., CliResult]
) -> None:
    data = {"source": source}
    config = write_project(home.parent, data=data, model=model, train={"epochs": 30, "lr": 0.003})
    assert _train_json(cli, "-c", str(config))["metrics"]["test_accuracy"] >= floor


def test_runs_list_and_show(home: Path, cli: Callable[..., CliResult]) -> None:
    config = write_project(home.parent)
    first = _train_json(cli, "-c", str(config))
    second = _train_json(cli, "-c", str(config))
    listed = cli("runs", "list", "--json").json()
    assert [r["id"] for r in listed] == [second["run_id"], first["run_id"]]
    for run in listed:
        assert {"id", "status", "metrics", "dataset_sha256", "weights_sha256"} <= set(run)
        assert run["status"] == "finished"
        assert len(run["dataset_sha256"]) == 64 and len(run["weights_sha256"]) == 64
    shown = cli("runs", "show", first["run_id"], "--json").json()
    assert len(shown["epochs"]) == 3
    assert [c["epoch"] for c in shown["checkpoints"]] == [1, 2, 3]
    assert shown["params"]["train"]["seed"] == 7
    human = cli("runs", "show", first["run_id"])
    assert human.code == 0 and "valid_accuracy" in human.out
    assert cli("runs", "show", "no-such-run").code == 2
    assert cli("train", "--resume", "no-such-run").code == 2
    assert cli("train", "--resume", first["run_id"]).code == 1  # already finished


def test_resume_refuses_changed_data(
    home: Path, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    from tests.data.conftest import people_frame

    csv = tmp_path / "people.csv"
    people_frame().to_csv(csv, index=False)
    config = write_project(
        home.parent,
        data={"source": str(csv), "target": "label"},
        train={"epochs": 200, "checkpoint_every": "3 steps"},
    )
    process = _start_training(config, home)
    run_dir = _wait_for_checkpoint(home, process, min_step=3)
    process.kill()
    process.communicate(timeout=30)
    people_frame(seed=9).to_csv(csv, index=False)
    result = cli("train", "--resume", run_dir.name)
    assert result.code == 1
    assert "data changed" in result.err


@pytest.mark.slow
def test_torchrun_two_processes_record_one_run(home: Path) -> None:
    config = write_project(home.parent, train={"epochs": 8, "lr": 0.003})
    torchrun = Path(sys.executable).parent / "torchrun"
    done = subprocess.run(
        [
            str(torchrun),
            "--nproc-per-node",
            "2",
            "--master-port",
            str(_free_port()),
            "-m",
            "dnnops",
            "train",
            "-c",
            str(config),
            "--quiet",
        ],
        env=subprocess_env(home),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    listed = subprocess.run(
        [sys.executable, "-m", "dnnops", "runs", "list", "--json"],
        env=subprocess_env(home),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    runs = json.loads(listed.stdout)
    assert len(runs) == 1
    assert runs[0]["status"] == "finished"
    assert runs[0]["world_size"] == 2
    assert runs[0]["metrics"]["test_accuracy"] > 0.8
    assert len(list(home.glob("runs/*/model.safetensors"))) == 1


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_balanced_class_weights_lift_a_rare_class(tmp_path: Path, home: Path) -> None:
    """5% of rows are 'fraud' and overlap the rest: unweighted, the model mostly answers
    'ok'; balanced weights trade some accuracy for finding the rare class."""
    import dnnops
    from dnnops.train.loop import balanced_weights
    from tests.userdata import project_file, write_csv

    assert balanced_weights(np.array([0, 0, 0, 1])).tolist() == pytest.approx([2 / 3, 2.0])
    rng = np.random.default_rng(0)
    rows = 2000
    fraud = rng.random(rows) < 0.05
    frame = pd.DataFrame(
        {
            "amount": rng.normal(np.where(fraud, 1.2, 0.0), 1.0),
            "hour": rng.normal(np.where(fraud, -1.0, 0.0), 1.0),
            "label": np.where(fraud, "fraud", "ok"),
        }
    )
    source = write_csv(frame, tmp_path / "fraud.csv")
    misses = {}
    for weighting in ("none", "balanced"):
        train = {"epochs": 15, "lr": 0.01, "seed": 1, "class_weight": weighting}
        config = project_file(tmp_path / f"{weighting}.yaml", "fraud", source, "label", train=train)
        report = dnnops.Project(config).train().report
        assert report is not None
        misses[weighting] = report.fnr_per_class[0]  # classes sorted: fraud first
    assert misses["balanced"] < misses["none"] - 0.2
