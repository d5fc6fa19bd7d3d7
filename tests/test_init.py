"""dnnops init --data: a project file inferred from a user's CSV, then trained as is."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dnnops.scaffold import infer_task
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
    [gate] = project["evaluate"]["gates"]  # half the way from the mean to gradient boosting
    assert gate["metric"] == "r2" and 0.3 < gate["min"] < 0.5
    missing = cli("init", "--data", str(source), "--target", "cost", "--path", "q.yaml")
    assert missing.code == 2 and "has no column 'cost'" in missing.err


def _credit_frame(rows: int = 3000, seed: int = 2) -> pd.DataFrame:
    """3% defaults, a saved pandas index, a customer key and a column that leaks the label."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    region = rng.choice(["north", "south", "east"], rows)
    logit = -4.6 + 1.6 * x1 - 1.2 * x2 + 0.8 * (region == "north")
    status = np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "default", "ok")
    income = rng.normal(50, 10, rows)
    income[rng.random(rows) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "Unnamed: 0": np.arange(rows),
            "customer": [f"C{i:06d}" for i in rng.permutation(rows)],
            "x1": x1,
            "x2": x2,
            "region": region,
            "income": income,
            "collections": np.where(status == "default", "sent", "none"),
            "status": status,
        }
    )


def test_init_on_a_rare_class_weighs_it_and_gates_on_what_the_data_supports(
    tmp_path: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    frame = _credit_frame()
    assert 0.02 < (frame["status"] == "default").mean() < 0.05
    source = write_csv(frame, tmp_path / "credit.csv")
    result = cli("init", "--data", str(source), "--target", "status")
    assert result.code == 0, result.err
    assert "dropped 'Unnamed: 0'" in result.out and "dropped 'customer'" in result.out
    assert "'collections' alone predicts the target" in result.out
    project = yaml.safe_load((tmp_path / "dnnops.yaml").read_text())
    assert project["data"]["schema"]["drop"] == ["Unnamed: 0", "customer"]
    assert project["train"]["class_weight"] == "balanced"
    gates = {g["metric"]: g["min"] for g in project["evaluate"]["gates"]}
    assert set(gates) == {"balanced_accuracy", "min_recall", "roc_auc"}  # never accuracy
    assert 0.5 < gates["balanced_accuracy"] < 0.99 and gates["min_recall"] < 0.99
    # the leaking column is named, and once dropped the inferred project trains to
    # gates it can reach, with a rare class it answers
    project["data"]["schema"]["drop"].append("collections")
    project["train"]["epochs"] = 30
    (tmp_path / "dnnops.yaml").write_text(yaml.safe_dump(project))
    trained = cli("train", "-c", "dnnops.yaml", "--json")
    assert trained.code == 0, trained.err
    evaluation = trained.json()["evaluation"]
    assert trained.json()["gates_passed"] is True
    assert evaluation["min_recall"] > 0.3  # the minority is predicted, not ignored
    assert evaluation["balanced_accuracy"] > evaluation["min_recall"] > 0
    shown = cli("models", "show", "credit@production")
    for part in ("per class", "recall", "confusion matrix", "gradient boosting", "trivial"):
        assert part in shown.out
    # piped, a table keeps its rows whole instead of folding them at 80 columns
    assert any(len(line) > 100 for line in shown.out.splitlines())
    assert not any("…" in line for line in shown.out.splitlines() if "roc_auc" in line)


@pytest.mark.parametrize(
    ("values", "task"),
    [
        (np.random.default_rng(0).poisson(190, 8645), "regression"),  # bikes an hour: counts
        (np.arange(1797) % 10, "classification"),  # digits' labels
        (np.random.default_rng(1).integers(3, 10, 4898), "classification"),  # wine quality
        (np.random.default_rng(2).integers(18, 80, 300), "regression"),  # ages
        (np.random.default_rng(3).integers(0, 15, 200), "regression"),  # 15 scores, 200 rows
        (np.random.default_rng(4).normal(size=50).round(2), "regression"),
        (np.array(["yes", "no"] * 40), "classification"),
        (np.array([True, False] * 40), "classification"),
    ],
)
def test_the_task_is_inferred_from_what_the_target_holds(values: np.ndarray, task: str) -> None:
    assert infer_task(pd.Series(values))[0] == task
