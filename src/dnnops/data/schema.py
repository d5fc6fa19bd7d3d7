"""The input schema of a dataset: inferred from training data, stored as JSON beside it.

A schema is what serving and monitoring hold new data to: per column the type,
nullability, observed range and category set; for tensor inputs the instance shape and
dtype; and the label classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, PrivateAttr

from dnnops.data.dataset import Dataset
from dnnops.data.media.specs import ImageSpec, TextSpec
from dnnops.errors import DataError

ColumnType = Literal["float", "int", "bool", "category", "image", "text"]
MEDIA_TYPES = ("image", "text")
Label = int | str


class ColumnSchema(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    type: ColumnType
    nullable: bool
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None
    sensitive: bool = False
    """Personal or secret: the prediction log keeps it hashed or drops it
    (``serve.log.redact``), and monitoring leaves it out."""
    image: ImageSpec | None = None
    text: TextSpec | None = None


class TensorSchema(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str = "x"
    shape: list[int]
    """The shape of one instance, without the batch dimension."""
    dtype: str
    min: float
    max: float


class TargetSchema(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    classes: list[Label] = []
    """Label values in class-index order: class ``i`` is ``classes[i]`` (classification)."""
    task: Literal["classification", "regression"] = "classification"
    mean: float | None = None
    """Regression: the training target's mean and standard deviation (the model predicts
    in these units; training scales its loss by them)."""
    std: float | None = None
    min: float | None = None
    max: float | None = None

    @property
    def is_regression(self) -> bool:
        return self.task == "regression"


class Schema(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: Literal["table", "tensor"]
    columns: list[ColumnSchema] = []
    tensor: TensorSchema | None = None
    target: TargetSchema | None = None
    ignored: list[str] = []
    """Columns a file may carry that are not features (group, dropped columns)."""
    range_tolerance: float = 0.1
    _limits: Any = PrivateAttr(default=None)
    """The input policy's arrays for this schema, computed on first use."""

    @property
    def feature_names(self) -> list[str]:
        if self.kind == "tensor":
            return [self.tensor.name if self.tensor else "x"]
        return [c.name for c in self.columns]

    @property
    def medium(self) -> ColumnSchema | None:
        """The image or text column, when the model's input is one."""
        return next((c for c in self.columns if c.type in MEDIA_TYPES), None)

    @property
    def sensitive_names(self) -> frozenset[str]:
        return frozenset(c.name for c in self.columns if c.sensitive)

    @property
    def num_classes(self) -> int:
        if self.target is None:
            raise DataError("the schema has no label classes: it was inferred without labels")
        return len(self.target.classes)

    @property
    def output_width(self) -> int:
        """The model's outputs per instance: one score per class, or one number."""
        if self.target is not None and self.target.is_regression:
            return 1
        return self.num_classes


def category_key(value: object) -> str:
    """Canonical text of a category value, so 3, 3.0 and "3" are one category."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.generic):
        return str(value.item())
    return str(value)


def infer_schema(
    dataset: Dataset,
    *,
    categorical: Sequence[str] = (),
    range_tolerance: float = 0.1,
    target_name: str = "target",
    ignored: Sequence[str] = (),
    task: Literal["classification", "regression"] = "classification",
    sensitive: Sequence[str] = (),
    image: str | None = None,
    text: str | None = None,
) -> Schema:
    """Describe ``dataset`` so later data can be checked against it. ``image`` or
    ``text`` names the column holding the model's image or text input, its only feature."""
    target = None
    if dataset.target is not None:
        target = (
            _numeric_target(target_name, dataset.target)
            if task == "regression"
            else TargetSchema(name=target_name, classes=_classes(dataset.target))
        )
    if isinstance(dataset.inputs, np.ndarray):
        tensor = _tensor_schema(dataset.inputs)
        return Schema(kind="tensor", tensor=tensor, target=target, range_tolerance=range_tolerance)
    for key, names in (("categorical", categorical), ("sensitive", sensitive)):
        unknown = sorted(set(names) - {str(c) for c in dataset.inputs.columns})
        if unknown:
            raise DataError(f"data.schema.{key} names columns the data lacks: {unknown}")
    medium = image or text
    if medium is not None:
        columns = [_media_schema(dataset.inputs, medium, "image" if image else "text")]
    else:
        columns = [
            _column_schema(str(name), dataset.inputs[name], str(name) in categorical).model_copy(
                update={"sensitive": str(name) in sensitive}
            )
            for name in dataset.inputs.columns
        ]
    return Schema(
        kind="table",
        columns=columns,
        target=target,
        ignored=list(ignored),
        range_tolerance=range_tolerance,
    )


def _media_schema(frame: pd.DataFrame, name: str, kind: Literal["image", "text"]) -> ColumnSchema:
    from dnnops.data.media.describe import describe_images, describe_texts  # Pillow, lazily

    key = f"data.{kind}.column"
    if name not in frame.columns:
        raise DataError(f"{key} is {name!r}, a column the data lacks: {list(frame.columns)[:20]}")
    others = [str(c) for c in frame.columns if c != name]
    if others:
        raise DataError(
            f"the model's input is the {kind} column {name!r} alone, but the data has other "
            f"columns {others[:10]}; list them in data.schema.drop (or data.group)"
        )
    column = frame[name]
    nullable = bool(column.isna().any())
    if kind == "image":
        return ColumnSchema(
            name=name, type="image", nullable=nullable, image=describe_images(column)
        )
    return ColumnSchema(name=name, type="text", nullable=nullable, text=describe_texts(column))


def _numeric_target(name: str, labels: pd.Series) -> TargetSchema:
    values = pd.to_numeric(labels, errors="coerce")
    bad = int(values.isna().sum() - labels.isna().sum())
    if bad:
        raise DataError(
            f"task: regression needs numbers in {name!r}; {bad} value(s) are not numbers "
            "(for labels, set task: classification)"
        )
    finite = values.dropna().to_numpy(dtype="float64")
    if len(finite) < 2:
        raise DataError(f"task: regression needs at least two numbers in {name!r}")
    std = float(finite.std())
    return TargetSchema(
        name=name,
        task="regression",
        mean=float(finite.mean()),
        std=std if std > 0 else 1.0,
        min=float(finite.min()),
        max=float(finite.max()),
    )


MAX_INTEGER_CLASSES = 50
"""More distinct integer labels than this (and than a tenth of the rows) read as a
quantity, not classes."""


def _classes(labels: pd.Series) -> list[Label]:
    values = labels.dropna().unique()
    if len(values) < 2:
        raise DataError(f"the label column needs at least two classes, found {list(values)}")
    if pd.api.types.is_bool_dtype(labels):
        return sorted(int(v) for v in values)
    if pd.api.types.is_numeric_dtype(labels):
        fractional = not all(float(v).is_integer() for v in values)
        if fractional or len(values) > max(MAX_INTEGER_CLASSES, len(labels) // 10):
            raise DataError(
                f"the label column {labels.name!r} holds {len(values)} distinct numbers"
                f"{' with fractions' if fractional else ''}: a quantity to predict "
                "(regression), not classes: set task: regression in dnnops.yaml, or pick a "
                "categorical label with data.target"
            )
        return sorted(int(v) for v in values)
    return sorted(str(v) for v in values)


def _column_schema(name: str, column: pd.Series, force_category: bool) -> ColumnSchema:
    nullable = bool(column.isna().any())
    kind = _column_type(column, force_category)
    if kind == "category":
        categories = sorted({category_key(v) for v in column.dropna().unique()})
        return ColumnSchema(name=name, type=kind, nullable=nullable, categories=categories)
    values = column.dropna().astype("float64")
    finite = values[np.isfinite(values)]
    low = float(finite.min()) if len(finite) else None
    high = float(finite.max()) if len(finite) else None
    return ColumnSchema(name=name, type=kind, nullable=nullable, min=low, max=high)


def _column_type(column: pd.Series, force_category: bool) -> ColumnType:
    if force_category:
        return "category"
    if pd.api.types.is_bool_dtype(column):
        return "bool"
    if pd.api.types.is_integer_dtype(column):
        return "int"
    if pd.api.types.is_float_dtype(column):
        return "float"
    return "category"


def _tensor_schema(array: np.ndarray) -> TensorSchema:
    if not np.issubdtype(array.dtype, np.number):
        raise DataError(f"tensor inputs must be numeric, got dtype {array.dtype}")
    finite = array[np.isfinite(array)] if np.issubdtype(array.dtype, np.floating) else array
    return TensorSchema(
        shape=list(array.shape[1:]),
        dtype=str(array.dtype),
        min=float(finite.min()),
        max=float(finite.max()),
    )


def bounds(spec: ColumnSchema | TensorSchema, tolerance: float) -> tuple[float, float]:
    """The observed range widened by ``tolerance`` times its span (or magnitude if constant)."""
    low = spec.min if spec.min is not None else -np.inf
    high = spec.max if spec.max is not None else np.inf
    span = high - low or abs(high) or 1.0
    return low - tolerance * span, high + tolerance * span
