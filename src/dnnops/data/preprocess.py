"""Fitted preprocessing, stored as JSON and applied by ONE function in training and serving.

``apply_preprocessing`` is the only code path from raw inputs to the model's tensor, so
the server cannot drift from what training did (no train/serve skew).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from dnnops.config import PreprocessingConfig
from dnnops.data.dataset import Dataset, Inputs
from dnnops.data.schema import Schema, category_key
from dnnops.errors import DataError


class ColumnTransform(BaseModel):
    """Numeric and bool columns: ``(x - offset) / scale``, missing -> ``fill``.
    Category columns: one-hot over ``categories``; unseen or missing -> all zeros."""

    model_config = ConfigDict(frozen=True)
    name: str
    type: Literal["numeric", "bool", "category"]
    offset: float = 0.0
    scale: float = 1.0
    fill: float = 0.0
    categories: list[str] | None = None

    @property
    def width(self) -> int:
        return len(self.categories) if self.categories is not None else 1


class Preprocessor(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["table", "tensor"]
    columns: list[ColumnTransform] = []
    tensor_offset: float = 0.0
    tensor_scale: float = 1.0
    input_shape: list[int]
    """The shape of one instance as the model receives it."""

    @property
    def feature_width(self) -> int:
        return int(np.prod(self.input_shape))


def fit_preprocessor(
    dataset: Dataset,
    schema: Schema,
    config: PreprocessingConfig,
    input_shape: Sequence[int] | None = None,
) -> Preprocessor:
    """Learn offsets, scales and category sets from training data only."""
    if isinstance(dataset.inputs, np.ndarray):
        offset, scale = _fit_affine(dataset.inputs.astype("float64").ravel(), config)
        natural = list(dataset.inputs.shape[1:])
        shape = _checked_shape(natural, input_shape)
        return Preprocessor(
            kind="tensor", tensor_offset=offset, tensor_scale=scale, input_shape=shape
        )
    columns = _fit_columns(dataset.inputs, schema, config)
    width = sum(c.width for c in columns)
    return Preprocessor(
        kind="table", columns=columns, input_shape=_checked_shape([width], input_shape)
    )


def apply_preprocessing(pre: Preprocessor, inputs: Inputs) -> np.ndarray:
    """Raw inputs -> float32 array shaped ``(N, *pre.input_shape)``."""
    if pre.kind == "tensor":
        if not isinstance(inputs, np.ndarray):
            raise DataError("this model takes tensor inputs, not a table")
        scaled = (inputs.astype("float32") - np.float32(pre.tensor_offset)) / np.float32(
            pre.tensor_scale
        )
        return scaled.reshape(len(inputs), *pre.input_shape)
    if isinstance(inputs, np.ndarray) and all(c.type != "category" for c in pre.columns):
        return _numeric_rows(pre, inputs).reshape(len(inputs), *pre.input_shape)
    frame = _as_frame(pre, inputs)
    blocks = [_column_block(frame[c.name], c) for c in pre.columns]
    matrix = np.concatenate(blocks, axis=1) if blocks else np.zeros((len(frame), 0), "float32")
    return matrix.reshape(len(frame), *pre.input_shape)


def _checked_shape(natural: list[int], requested: Sequence[int] | None) -> list[int]:
    if requested is None:
        return natural
    if int(np.prod(requested)) != int(np.prod(natural)):
        raise DataError(
            f"model.input_shape {list(requested)} holds {int(np.prod(requested))} values but each "
            f"instance has {int(np.prod(natural))} after preprocessing; fix model.input_shape"
        )
    return list(requested)


def _fit_affine(values: np.ndarray, config: PreprocessingConfig) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if config.numeric == "none" or len(finite) == 0:
        return 0.0, 1.0
    if config.numeric == "scale":
        return 0.0, float(np.abs(finite).max()) or 1.0
    mean, std = float(finite.mean()), float(finite.std())
    # A constant column's std comes out as rounding noise (1e-11 for 3.5e5), not 0: treat
    # anything below float64 resolution at this magnitude as constant, or it blows up to ±1.
    if std <= 1e-9 * max(1.0, abs(mean)):
        std = 1.0
    return mean, std


def _fit_columns(
    frame: pd.DataFrame, schema: Schema, config: PreprocessingConfig
) -> list[ColumnTransform]:
    numeric = [c.name for c in schema.columns if c.type in ("float", "int")]
    shared_scale = 1.0
    if config.numeric == "scale" and numeric:
        values = frame[numeric].to_numpy(dtype="float64", na_value=np.nan)
        shared_scale = _fit_affine(values.ravel(), config)[1]
    out = []
    for column in schema.columns:
        if column.type == "category":
            out.append(
                ColumnTransform(name=column.name, type="category", categories=column.categories)
            )
        elif column.type == "bool":
            out.append(ColumnTransform(name=column.name, type="bool"))
        else:
            column_values = frame[column.name].to_numpy(dtype="float64", na_value=np.nan)
            offset, scale = _fit_affine(column_values, config)
            if config.numeric == "scale":
                offset, scale = 0.0, shared_scale
            finite = np.isfinite(column_values)
            mean = float(column_values[finite].mean()) if finite.any() else 0.0
            out.append(
                ColumnTransform(
                    name=column.name, type="numeric", offset=offset, scale=scale, fill=mean
                )
            )
    return out


def _as_frame(pre: Preprocessor, inputs: Inputs) -> pd.DataFrame:
    names = [c.name for c in pre.columns]
    if isinstance(inputs, pd.DataFrame):
        missing = [n for n in names if n not in inputs.columns]
        if missing:
            raise DataError(f"inputs lack the columns {missing[:5]}")
        return inputs
    if inputs.ndim != 2 or inputs.shape[1] != len(names):
        raise DataError(
            f"expected rows of {len(names)} values in schema order, got shape {inputs.shape}"
        )
    return pd.DataFrame(inputs, columns=names)


def _numeric_rows(pre: Preprocessor, rows: np.ndarray) -> np.ndarray:
    """The vectorised path for rows of numbers in schema order (the serving hot path):
    the same arithmetic as ``_column_block``, on all columns at once."""
    if rows.ndim != 2 or rows.shape[1] != len(pre.columns):
        raise DataError(
            f"expected rows of {len(pre.columns)} values in schema order, got shape {rows.shape}"
        )
    values = rows.astype("float64", copy=False)
    is_bool = np.array([c.type == "bool" for c in pre.columns])
    fill = np.array([c.fill for c in pre.columns])
    offset = np.array([c.offset for c in pre.columns])
    scale = np.array([c.scale for c in pre.columns])
    filled = np.where(np.isfinite(values), values, fill)
    out: np.ndarray = np.where(is_bool, (filled != 0).astype("float64"), (filled - offset) / scale)
    return out.astype("float32")


def _column_block(series: pd.Series, column: ColumnTransform) -> np.ndarray:
    if column.type == "category":
        keys = [category_key(v) if not pd.isna(v) else None for v in series.to_numpy(dtype=object)]
        index = {c: i for i, c in enumerate(column.categories or [])}
        block = np.zeros((len(keys), column.width), dtype="float32")
        for row, key in enumerate(keys):
            position = index.get(key) if key is not None else None
            if position is not None:
                block[row, position] = 1.0
        return block
    if column.type == "bool":
        texts = series.astype(str).str.lower()
        return texts.isin(["true", "1", "1.0"]).to_numpy(dtype="float32").reshape(-1, 1)
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    filled = np.where(np.isfinite(values), values, column.fill)
    scaled = (filled - column.offset) / column.scale
    return scaled.astype("float32").reshape(-1, 1)
