"""Type coercion at the boundary is a policy (serve.coerce): a JSON boolean is no number
and a JSON number no text category, unless the project says lenient."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from dnnops.config import PreprocessingConfig, ServeConfig
from dnnops.data.dataset import Dataset
from dnnops.data.preprocess import fit_preprocessor
from dnnops.data.schema import infer_schema
from dnnops.errors import InputViolation
from dnnops.inference.inputs import InputAdapter
from tests.userdata import penguins_frame


def _adapter(coerce: str = "strict", *, rooms_as_category: bool = False) -> InputAdapter:
    frame = penguins_frame(rows=120)
    frame["rooms"] = np.arange(120) % 4  # an integer code, declared a category below
    labels = frame.pop("species")
    dataset = Dataset(frame, labels, None, "test")
    categorical = ["rooms"] if rooms_as_category else []
    schema = infer_schema(dataset, target_name="species", categorical=categorical)
    pre = fit_preprocessor(dataset, schema, PreprocessingConfig())
    return InputAdapter(schema, ServeConfig(coerce=coerce), pre)  # type: ignore[arg-type]


ROW = {"bill_length_mm": 39.0, "body_mass_g": 3650.0, "island": "Dream", "sex": "female"}


@pytest.mark.parametrize(
    ("change", "feature", "said"),
    [
        ({"body_mass_g": True}, "body_mass_g", "true, a boolean"),
        ({"bill_length_mm": False}, "bill_length_mm", "false, a boolean"),
        ({"island": 3}, "island", "3, a int, for a text category"),
        ({"sex": True}, "sex", "true, a bool, for a text category"),
    ],
)
def test_strict_refuses_the_wrong_json_type_naming_the_feature(
    change: dict[str, object], feature: str, said: str
) -> None:
    adapter = _adapter()
    instance = {**ROW, "rooms": 2, **change}
    for instances in ([instance], [dict(ROW, rooms=1)] * 70 + [instance]):  # small and large
        with pytest.raises(InputViolation) as raised:
            adapter.from_v1(instances)
        message = str(raised.value)
        assert repr(feature) in message and said in message
        assert "serve.coerce: lenient" in message
    as_row = [instance[n] for n in adapter.names]  # a list in schema order too
    with pytest.raises(InputViolation, match=re.escape(repr(feature))):
        adapter.from_v1([as_row])


def test_strict_still_takes_what_is_well_typed() -> None:
    adapter = _adapter(rooms_as_category=True)
    checked = adapter.from_v1([{**ROW, "rooms": 2}, {**ROW, "rooms": "3", "sex": None}])
    assert checked.raw.rows == 2
    # a category trained on integer codes names a category by number as well as by text
    assert list(checked.raw.columns["rooms"]) == ["2", "3"]


def test_lenient_reads_a_boolean_as_a_number_and_a_number_as_a_category() -> None:
    adapter = _adapter("lenient")
    checked = adapter.from_v1([{**ROW, "rooms": 1, "body_mass_g": True, "island": 3}])
    assert checked.raw.columns["body_mass_g"][0] == 1.0
    assert checked.raw.columns["island"][0] == "3"


def test_a_tensor_model_refuses_null_by_default() -> None:
    x = np.random.default_rng(0).normal(size=(50, 2, 3)).astype("float32")
    dataset = Dataset(x, pd.Series(np.arange(50) % 2), None, "test")
    schema = infer_schema(dataset)
    pre = fit_preprocessor(dataset, schema, PreprocessingConfig())
    adapter = InputAdapter(schema, ServeConfig(), pre)
    instance = x[0].tolist()
    instance[1][2] = None
    with pytest.raises(InputViolation, match=r"serve\.non_finite"):
        adapter.from_v1([instance])
    lenient = InputAdapter(schema, ServeConfig(non_finite="impute"), pre)
    assert lenient.from_v1([instance]).raw.shape == (1, 2, 3)
