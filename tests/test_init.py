"""dnnops init --data: a project file inferred from a user's CSV, then trained as is."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

from tests.conftest import CliResult
from tests.userdata import penguins_frame, prices_frame, write_csv


def test_init_from_a_csv_writes_a_project_that_trains(
    tmp_path: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    frame = penguins_frame()
    frame.insert(0, "penguin_id", np.arange(1000, 1000 + len(frame)))
    source = write_csv(frame, tmp_path / "penguins.csv")
    result = cli("init", "--data", str(source), "--target", "species")
    assert result.code == 0, result.err
    assert "task classification" in result.out and "dnnops train -c dnnops.yaml" in result.out
    project = yaml.safe_load((tmp_path / "dnnops.yaml").read_text())
    assert project["task"] == "classification"
    assert project["data"]["target"] == "species"
    assert project["data"]["schema"]["drop"] == ["penguin_id"]
    assert project["evaluate"]["gates"][0]["metric"] == "accuracy"
    assert cli("init", "--data", str(source), "--target", "species").code == 2  # exists
    trained = cli("train", "-c", "dnnops.yaml", "--json")
    assert trained.code == 0, trained.err
    assert trained.json()["gates_passed"] is True


def test_init_infers_a_regression_target_and_names_a_missing_column(
    tmp_path: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    source = write_csv(prices_frame(), tmp_path / "prices.csv")
    result = cli("init", "--data", str(source), "--target", "price", "--path", "p.yaml")
    assert result.code == 0, result.err
    assert "task regression" in result.out
    assert yaml.safe_load((tmp_path / "p.yaml").read_text())["task"] == "regression"
    project = yaml.safe_load((tmp_path / "p.yaml").read_text())
    assert project["evaluate"]["gates"] == [{"metric": "r2", "min": 0.5}]
    missing = cli("init", "--data", str(source), "--target", "cost", "--path", "q.yaml")
    assert missing.code == 2 and "has no column 'cost'" in missing.err
