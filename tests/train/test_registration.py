"""No lost runs, no leaks by default: what a user met on a price-sorted file with R's
row numbers, a column dropped between versions, and a registration that failed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import CliResult
from tests.userdata import prices_frame, project_file, write_csv

FAST = {"epochs": 6, "batch_size": 32, "lr": 0.01, "seed": 1}


def _sorted_prices(tmp_path: Path) -> Path:
    """Sorted by price with a row-number column in front, as R's write.csv leaves it."""
    frame = prices_frame(rows=500).sort_values("price").reset_index(drop=True)
    frame.insert(0, "rownames", np.arange(1, len(frame) + 1))
    return write_csv(frame, tmp_path / "prices.csv")


def _schema_columns(cli: Callable[..., CliResult], ref: str) -> list[str]:
    shown = cli("models", "show", ref, "--json")
    assert shown.code == 0, shown.err
    return [c["name"] for c in shown.json()["inputs"]["columns"]]


def test_row_numbers_are_dropped_and_a_dropped_column_never_loses_the_run(
    tmp_path: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    source = _sorted_prices(tmp_path)
    kept = project_file(
        tmp_path / "kept.yaml",
        "prices",
        source,
        "price",
        task="regression",
        train=FAST,
        data={"source": str(source), "target": "price", "keep": ["rownames"]},
    )
    first = cli("train", "-c", str(kept), "--json")
    assert first.code == 0, first.err
    assert "'rownames' alone predicts the target" in first.err  # kept knowingly, still warned
    assert "rownames" in _schema_columns(cli, "prices@1")
    plain = project_file(tmp_path / "plain.yaml", "prices", source, "price", task="regression")
    plain.write_text(plain.read_text().replace("epochs: 25", "epochs: 6"))
    second = cli("train", "-c", str(plain))
    assert second.code == 0, second.err
    assert "column 'rownames' is not a feature: named like a row number" in second.err
    # said before the first epoch, and the registration goes through without the champion
    assert second.err.index("reads the columns ['rownames']") < second.err.index("epoch 1/6")
    assert "ETA" in second.err  # progress goes to a log file too, one line per epoch
    assert "no comparison with production" in second.out
    assert "registered prices@2" in second.out
    assert "rownames" not in _schema_columns(cli, "prices@2")


def test_a_failed_registration_leaves_a_run_that_registers_later(
    tmp_path: Path, home: Path, cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_csv(prices_frame(rows=300), tmp_path / "prices.csv")
    config = project_file(
        tmp_path / "p.yaml", "prices", source, "price", task="regression", train=FAST
    )
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("DNNOPS_ARTIFACTS_URL", str(blocked / "artifacts"))
    failed = cli("train", "-c", str(config))
    assert failed.code == 1
    runs = cli("runs", "list", "--json").json()
    run_id = runs[0]["id"]
    assert runs[0]["status"] == "finished"
    assert f"Once fixed, register it with: dnnops models register {run_id}" in failed.err
    assert "resume" not in failed.err
    monkeypatch.delenv("DNNOPS_ARTIFACTS_URL")
    resumed = cli("train", "--resume", run_id)
    assert resumed.code == 1 and f"dnnops models register {run_id}" in resumed.err
    registered = cli("models", "register", run_id, "--json")
    assert registered.code == 0, registered.err
    assert registered.json()["version"] == 1
    assert registered.json()["metrics"]["mae"] > 0
    again = cli("models", "register", run_id)
    assert again.code == 2 and "registered already, as prices@1" in again.err
    unknown = cli("models", "register", "20990101-000000-abcdef")
    assert unknown.code == 2 and "no run" in unknown.err


def test_gates_on_metrics_the_evaluation_lacks_are_refused_before_training(
    tmp_path: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    source = write_csv(prices_frame(rows=300), tmp_path / "prices.csv")
    config = project_file(
        tmp_path / "p.yaml",
        "prices",
        source,
        "price",
        task="regression",
        train=FAST,
        evaluate={"gates": [{"metric": "accuracy", "min": 0.9}]},
    )
    refused = cli("train", "-c", str(config))
    assert refused.code == 2
    assert "will not have: ['accuracy']" in refused.err and "mae" in refused.err
    assert cli("runs", "list", "--json").json() == []  # refused before any run began


def test_a_regressor_evaluates_on_a_file_and_aliases_respect_its_gates(
    tmp_path: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    source = write_csv(prices_frame(rows=300), tmp_path / "prices.csv")
    passing = project_file(
        tmp_path / "p.yaml", "prices", source, "price", task="regression", train=FAST
    )
    assert cli("train", "-c", str(passing)).code == 0
    failing = project_file(
        tmp_path / "f.yaml",
        "prices",
        source,
        "price",
        task="regression",
        train=FAST,
        evaluate={"gates": [{"metric": "r2", "min": 0.9999}]},
    )
    assert cli("train", "-c", str(failing)).code == 1  # v2, registered, failed its gate
    fresh = write_csv(prices_frame(rows=120, seed=9), tmp_path / "fresh.csv")
    evaluated = cli("eval", "prices@1", "--data", str(fresh), "--json")
    assert evaluated.code == 0, evaluated.err
    report = evaluated.json()
    assert report["task"] == "regression" and report["samples"] == 120
    assert report["metrics"]["mae"] > 0 and report["metrics"]["r2"] > 0.5
    shown = cli("eval", "prices@1", "--data", str(fresh))
    assert "mae" in shown.out and "r2" in shown.out
    refused = cli("models", "alias", "prices", "2", "production")
    assert refused.code == 1 and "failed its evaluation gates" in refused.err
    assert cli("models", "show", "prices@production", "--json").json()["version"] == 1
    forced = cli("models", "alias", "prices", "2", "production", "--force")
    assert forced.code == 0, forced.err
    audit = cli("models", "audit", "prices", "--json").json()
    assert any(e["action"] == "alias_forced" for e in audit)


def test_a_split_by_time_trains_on_the_past_and_the_time_is_no_feature(
    tmp_path: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    frame = prices_frame(rows=300)
    frame["sold"] = pd.date_range("2024-01-01", periods=300, freq="D").astype(str)
    frame = frame.sample(frac=1.0, random_state=3)  # the file is not in time order
    source = write_csv(frame, tmp_path / "sales.csv")
    config = project_file(
        tmp_path / "p.yaml",
        "sales",
        source,
        "price",
        task="regression",
        train=FAST,
        data={"source": str(source), "target": "price", "split": {"by": "sold"}},
    )
    trained = cli("train", "-c", str(config), "--json")
    assert trained.code == 0, trained.err
    assert "sold" not in _schema_columns(cli, "sales@1")
    run = cli("runs", "show", trained.json()["run_id"], "--json").json()
    assert run["params"]["data"]["split"]["by"] == "sold"
