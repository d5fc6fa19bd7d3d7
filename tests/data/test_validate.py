from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from dnnops.data.dataset import Dataset
from dnnops.data.schema import infer_schema
from dnnops.data.validate import validate_frame, validate_tensor
from tests.conftest import CliResult
from tests.data.conftest import people_frame


def _project(folder: Path, source: Path) -> Path:
    path = folder / "dnnops.yaml"
    path.write_text(
        yaml.safe_dump({"name": "people", "data": {"source": str(source), "target": "label"}})
    )
    return path


def _planted(frame: pd.DataFrame) -> pd.DataFrame:
    """Five problems: missing column, extra column, wrong type, null, unseen category."""
    bad = frame.head(40).copy()
    bad = bad.drop(columns=["member"])
    bad["comment"] = "hello"
    bad["age"] = bad["age"].astype(object)
    bad.loc[3, "age"] = "forty"
    bad.loc[5, "height"] = np.nan
    bad.loc[7, "city"] = "Atlantis"
    return bad


def test_five_planted_problems_give_exactly_five_findings(
    tmp_path: Path, people_csv: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    bad_path = tmp_path / "bad.csv"
    _planted(people_frame()).to_csv(bad_path, index=False)
    project = _project(tmp_path, people_csv)

    result = cli("data", "validate", str(bad_path), "-c", str(project), "--json")

    assert result.code == 1
    report = result.json()
    found = {(f["column"], f["rule"]) for f in report["findings"]}
    assert found == {
        ("member", "missing_column"),
        ("comment", "extra_column"),
        ("age", "wrong_type"),
        ("height", "null"),
        ("city", "unseen_category"),
    }
    by_rule = {f["rule"]: f for f in report["findings"]}
    assert by_rule["wrong_type"]["rows"] == 1
    assert by_rule["wrong_type"]["examples"] == [{"row": 3, "value": "forty"}]
    assert by_rule["unseen_category"]["examples"] == [{"row": 7, "value": "Atlantis"}]


def test_a_clean_file_without_labels_is_valid(
    tmp_path: Path, people_csv: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    clean = tmp_path / "inference.parquet"
    people_frame(seed=1).drop(columns=["label"]).to_parquet(clean)
    result = cli("data", "validate", str(clean), "-c", str(_project(tmp_path, people_csv)))
    assert result.code == 0, result.out
    assert "valid" in result.out


def test_human_output_lists_each_problem(
    tmp_path: Path, people_csv: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    bad_path = tmp_path / "bad.csv"
    _planted(people_frame()).to_csv(bad_path, index=False)
    result = cli("data", "validate", str(bad_path), "-c", str(_project(tmp_path, people_csv)))
    assert result.code == 1
    for rule in ("missing_column", "extra_column", "wrong_type", "null", "unseen_category"):
        assert rule in result.out


def test_range_infinity_and_label_rules() -> None:
    frame = people_frame()
    schema = infer_schema(_dataset(frame), range_tolerance=0.1, target_name="label")
    current = frame.head(20).copy()
    current.loc[0, "height"] = 10_000.0
    current.loc[1, "score"] = np.inf
    current.loc[2, "label"] = "maybe"
    rules = {(f.column, f.rule, f.rows) for f in validate_frame(current, schema)}
    assert rules == {
        ("height", "out_of_range", 1),
        ("score", "non_finite", 1),
        ("label", "unseen_category", 1),
    }


def test_values_within_the_tolerance_pass() -> None:
    frame = people_frame()
    schema = infer_schema(_dataset(frame), range_tolerance=0.1, target_name="label")
    span = frame["height"].max() - frame["height"].min()
    current = frame.head(5).copy()
    current.loc[0, "height"] = frame["height"].max() + 0.09 * span
    assert validate_frame(current, schema) == []


def test_tensor_shape_and_finiteness() -> None:
    x = np.random.default_rng(0).random((50, 4, 4)).astype("float32")
    schema = infer_schema(_tensor_dataset(x))
    assert [f.rule for f in validate_tensor(np.zeros((3, 4, 5), "float32"), schema)] == [
        "wrong_shape"
    ]
    broken = x[:5].copy()
    broken[2, 1, 1] = np.nan
    broken[4, 0, 0] = 50.0
    found = {(f.rule, f.rows) for f in validate_tensor(broken, schema)}
    assert found == {("non_finite", 1), ("out_of_range", 1)}


def _dataset(frame: pd.DataFrame) -> Dataset:
    return Dataset(frame.drop(columns=["label"]), frame["label"], None, "test")


def _tensor_dataset(x: np.ndarray) -> Dataset:
    return Dataset(x, pd.Series(np.arange(len(x)) % 2), None, "test")
