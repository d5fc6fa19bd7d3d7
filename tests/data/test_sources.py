from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dnnops.config import SplitConfig, parse_config
from dnnops.data.fingerprint import fingerprint
from dnnops.data.prepare import prepare_data
from dnnops.data.sources import load_source
from dnnops.data.split import split_indices
from dnnops.errors import DataError
from tests.conftest import CliResult
from tests.data.conftest import people_frame


@pytest.mark.parametrize(
    ("name", "rows", "features", "classes"),
    [("digits", 1797, 64, 10), ("breast_cancer", 569, 30, 2), ("wine", 178, 13, 3)],
)
def test_builtin_sets_load_with_sklearn_names(
    name: str, rows: int, features: int, classes: int
) -> None:
    dataset = load_source(f"builtin:{name}")
    assert len(dataset) == rows
    assert isinstance(dataset.inputs, pd.DataFrame)
    assert dataset.inputs.shape[1] == features
    assert dataset.target is not None and dataset.target.nunique() == classes


def test_csv_and_parquet_of_the_same_rows_share_a_fingerprint(tmp_path: Path) -> None:
    frame = people_frame()
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.to_parquet(tmp_path / "a.parquet")
    from_csv = load_source(str(tmp_path / "a.csv"), "label")
    from_parquet = load_source(str(tmp_path / "a.parquet"), "label")
    assert fingerprint(from_csv) == fingerprint(from_parquet)
    changed = frame.copy()
    changed.loc[10, "height"] += 0.1
    changed.to_csv(tmp_path / "b.csv", index=False)
    assert fingerprint(load_source(str(tmp_path / "b.csv"), "label")) != fingerprint(from_csv)


def test_npz_holds_tensor_inputs(tmp_path: Path) -> None:
    x = np.random.default_rng(0).random((20, 3, 4, 4)).astype("float32")
    np.savez(tmp_path / "t.npz", x=x, y=np.arange(20) % 2)
    dataset = load_source(str(tmp_path / "t.npz"))
    assert isinstance(dataset.inputs, np.ndarray) and dataset.inputs.shape == (20, 3, 4, 4)
    np.savez(tmp_path / "nolabels.npz", x=x)
    with pytest.raises(DataError, match="no array 'y'"):
        load_source(str(tmp_path / "nolabels.npz"))
    assert load_source(str(tmp_path / "nolabels.npz"), require_target=False).target is None


def test_npz_with_pickled_objects_is_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "evil.npz", x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="pickled"):
        load_source(str(tmp_path / "evil.npz"))


def test_missing_file_and_missing_label_are_named(tmp_path: Path, people_csv: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_source(str(tmp_path / "nope.csv"))
    with pytest.raises(DataError, match=r"data\.target"):
        load_source(str(people_csv), "outcome")


def test_split_is_deterministic_disjoint_and_stratified() -> None:
    labels = pd.Series(np.repeat([0, 1, 2], [100, 50, 30]))
    config = SplitConfig(seed=3)
    first, second = split_indices(180, config, labels), split_indices(180, config, labels)
    assert all(
        np.array_equal(getattr(first, p), getattr(second, p)) for p in ("train", "valid", "test")
    )
    union = np.concatenate([first.train, first.valid, first.test])
    assert sorted(union.tolist()) == list(range(180))
    assert labels.iloc[first.test].value_counts().to_dict() == {0: 10, 1: 5, 2: 3}
    other = split_indices(180, SplitConfig(seed=4), labels)
    assert not np.array_equal(first.test, other.test)


def test_prepare_fits_preprocessing_on_the_training_part_only(people_csv: Path) -> None:
    config = parse_config({"name": "p", "data": {"source": str(people_csv), "target": "label"}})
    prepared = prepare_data(config.data, config.model)
    # height standardized with train statistics: train mean ~0, width = 3 numeric + 3 cities + bool
    assert prepared.train.x.shape[1] == 3 + 3 + 1
    assert abs(float(prepared.train.x[:, 1].mean())) < 1e-5
    assert prepared.schema.target is not None and prepared.schema.target.classes == ["no", "yes"]
    names = [f.name for f in prepared.profile.features]
    assert names == ["age", "height", "city", "member", "score"]
    city = prepared.profile.feature("city")
    assert city.frequencies is not None and sum(city.frequencies.values()) == len(
        prepared.split.train
    )
    height = prepared.profile.feature("height")
    assert height.percentiles is not None and len(height.percentiles) == 101
    assert height.bin_counts is not None and sum(height.bin_counts) == len(prepared.split.train)


def test_profile_command_prints_schema_and_json(
    people_csv: Path, cli: Callable[..., CliResult]
) -> None:
    human = cli("data", "profile", str(people_csv))
    assert human.code == 0
    assert "city" in human.out and "category" in human.out
    city = next(line for line in human.out.splitlines() if "city" in line)
    cells = [cell.strip() for cell in city.split("│")]
    assert cells[3:6] == ["", "", "3"]  # no min or max; the category count in its own column
    report = cli("data", "profile", str(people_csv), "--target", "label", "--json").json()
    columns = {c["name"]: c for c in report["schema"]["columns"]}
    assert columns["age"]["type"] == "int"
    assert columns["city"]["categories"] == ["Lima", "Lyon", "Oslo"]
    assert columns["score"]["nullable"] is True
    assert report["schema"]["target"]["classes"] == ["no", "yes"]
