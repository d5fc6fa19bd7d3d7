"""The input policy: one contract for the server, batch prediction and data validate."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dnnops.config import PreprocessingConfig
from dnnops.data.dataset import Dataset
from dnnops.data.policy import InputPolicy, PolicyViolation, enforce_frame, enforce_table
from dnnops.data.preprocess import Preprocessor, apply_preprocessing, fit_preprocessor
from dnnops.data.schema import Schema, infer_schema
from dnnops.data.table import ColumnKind, ColumnValueError, TableBatch, from_values
from tests.conftest import CliResult
from tests.userdata import penguins_frame

FEATURES = ["bill_length_mm", "body_mass_g", "island", "sex"]


def _fitted() -> tuple[pd.DataFrame, Schema, Preprocessor]:
    frame = penguins_frame()
    dataset = Dataset(frame[FEATURES], frame["species"], None, "test")
    schema = infer_schema(dataset, target_name="species")
    pre = fit_preprocessor(dataset, schema, PreprocessingConfig())
    return frame, schema, pre


def _json_batch(rows: list[dict[str, object]]) -> TableBatch:
    kinds: dict[str, ColumnKind] = {"bill_length_mm": "numeric", "body_mass_g": "numeric"}
    columns = {
        name: from_values(name, kinds.get(name, "category"), [r[name] for r in rows])
        for name in FEATURES
    }
    return TableBatch(columns, len(rows))


ODD = [
    {"bill_length_mm": None, "body_mass_g": 3800.0, "island": "Dream", "sex": "male"},
    {"bill_length_mm": 40.0, "body_mass_g": 1e9, "island": "Mars", "sex": None},
]


def test_json_rows_and_a_dataframe_encode_identically() -> None:
    """One encoder: what the server builds from JSON is what training built from pandas."""
    frame, _, pre = _fitted()
    rows = frame[FEATURES].head(50).replace({np.nan: None}).to_dict(orient="records")
    from_json = apply_preprocessing(pre, _json_batch(rows))
    from_pandas = apply_preprocessing(pre, frame[FEATURES].head(50))
    np.testing.assert_array_equal(from_json, from_pandas)
    odd = apply_preprocessing(pre, _json_batch(ODD))
    assert np.isfinite(odd).all()


def test_defaults_accept_and_count_what_training_would_have_handled() -> None:
    _, schema, _ = _fitted()
    batch, counts = enforce_table(_json_batch(ODD), schema, InputPolicy())
    assert counts == {
        ("bill_length_mm", "missing"): 1,
        ("body_mass_g", "out_of_range"): 1,
        ("island", "unseen_category"): 1,
        ("sex", "missing"): 1,
    }
    assert batch.columns["body_mass_g"][1] == 1e9  # accepted as is


@pytest.mark.parametrize(
    ("policy", "feature", "setting"),
    [
        (InputPolicy(missing="reject"), "bill_length_mm", "serve.missing: reject"),
        (InputPolicy(unseen_category="reject"), "island", "serve.unseen_category: reject"),
        (InputPolicy(out_of_range="reject"), "body_mass_g", "serve.out_of_range: reject"),
    ],
)
def test_a_reject_policy_names_the_feature_and_the_setting(
    policy: InputPolicy, feature: str, setting: str
) -> None:
    _, schema, _ = _fitted()
    with pytest.raises(PolicyViolation) as caught:
        enforce_table(_json_batch(ODD), schema, policy)
    assert f"feature {feature!r}" in str(caught.value) and setting in str(caught.value)


def test_clip_holds_numbers_to_the_training_range() -> None:
    _, schema, _ = _fitted()
    clipped, _ = enforce_table(
        _json_batch(ODD),
        schema,
        InputPolicy(out_of_range="clip"),
    )
    mass = next(c for c in schema.columns if c.name == "body_mass_g")
    assert clipped.columns["body_mass_g"][1] == mass.max


def test_text_in_a_number_column_is_named() -> None:
    with pytest.raises(ColumnValueError, match="feature 'mass' must be a number, got 'heavy'"):
        from_values("mass", "numeric", [1.0, "heavy"])


def test_data_validate_agrees_with_the_server_policy(
    tmp_path: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    source = tmp_path / "penguins.csv"
    penguins_frame().to_csv(source, index=False)
    odd = tmp_path / "odd.csv"
    pd.DataFrame(ODD).to_csv(odd, index=False)
    project = {"name": "p", "data": {"source": str(source), "target": "species"}}
    config = tmp_path / "dnnops.yaml"
    config.write_text(yaml.safe_dump(project))

    accepted = cli("data", "validate", str(odd), "-c", str(config), "--json")
    assert accepted.code == 0, accepted.out  # the server would answer every row
    report = accepted.json()
    assert report["refused"] == 0 and report["accepted"] == 2
    actions = {f["rule"]: f["action"] for f in report["findings"]}
    assert actions == {
        "unseen_category": "encoded as unknown (all zeros)",
        "out_of_range": "accepted as is",
    }
    assert cli("data", "validate", str(odd), "-c", str(config), "--strict").code == 1

    project["serve"] = {"out_of_range": "reject", "missing": "reject"}
    config.write_text(yaml.safe_dump(project))
    refused = cli("data", "validate", str(odd), "-c", str(config), "--json")
    assert refused.code == 1
    rules = {f["rule"]: f["action"] for f in refused.json()["findings"]}
    assert rules["out_of_range"] == "refused" and rules["null"] == "refused"


@pytest.mark.parametrize("rows", [3, 200])
def test_a_missing_category_counts_as_missing_in_a_batch_of_any_size(rows: int) -> None:
    """A request's few rows and a batch file's thousands take different lookups; both call
    an empty category missing, never unseen (which ``unseen_category: reject`` refuses)."""
    frame, schema, pre = _fitted()
    part = frame[FEATURES].head(rows).copy()
    part.loc[part.index[:2], "island"] = None
    policy = InputPolicy(unseen_category="reject")
    _, counts = enforce_frame(part, schema, pre, policy=policy)
    assert counts[("island", "missing")] == int(part["island"].isna().sum())
    assert ("island", "unseen_category") not in counts
