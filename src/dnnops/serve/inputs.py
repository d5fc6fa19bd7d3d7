"""From request tensors (v2) or instances (v1) to the raw inputs the model's preprocessing
takes, checked against the version's schema at the boundary.

A model whose inputs are all numbers takes one tensor ``input`` shaped ``[N, columns]``
(tables) or ``[N, *shape]`` (tensors). A table with category columns takes one tensor per
column, named after it (BYTES for categories). Violations are 422s naming the tensor or
feature and the rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dnnops.config import ServeConfig
from dnnops.data.dataset import Inputs
from dnnops.data.schema import Schema
from dnnops.data.validate import bounds
from dnnops.serve.errors import BadRequest, SchemaViolation
from dnnops.serve.protocol import InferInput

NUMERIC_TYPES = {
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
}
INPUT = "input"


class InputAdapter:
    def __init__(self, schema: Schema, policy: ServeConfig) -> None:
        self.schema = schema
        self.policy = policy
        self.columns = schema.columns
        self.per_column = schema.kind == "table" and any(
            c.type == "category" for c in schema.columns
        )
        if schema.kind == "tensor" and schema.tensor is not None:
            self.instance_shape = list(schema.tensor.shape)
            self.feature_names = [
                f"{schema.tensor.name}[{i}]" for i in range(int(np.prod(self.instance_shape)))
            ]
            low, high = bounds(schema.tensor, schema.range_tolerance)
            self.low, self.high = np.full(1, low), np.full(1, high)
        else:
            self.instance_shape = [len(self.columns)]
            self.feature_names = [c.name for c in self.columns]
            pairs = [
                bounds(c, schema.range_tolerance) if c.min is not None else (-np.inf, np.inf)
                for c in self.columns
            ]
            self.low = np.array([p[0] for p in pairs])
            self.high = np.array([p[1] for p in pairs])

    # -- metadata ---------------------------------------------------------------------

    def metadata(self) -> list[dict[str, Any]]:
        if not self.per_column:
            return [{"name": INPUT, "datatype": "FP32", "shape": [-1, *self.instance_shape]}]
        return [
            {"name": c.name, "datatype": "BYTES" if c.type == "category" else "FP32", "shape": [-1]}
            for c in self.columns
        ]

    # -- v2 -----------------------------------------------------------------------------

    def from_v2(self, inputs: list[InferInput]) -> Inputs:
        if self.per_column:
            return self._columns_from_v2(inputs)
        if len(inputs) != 1 or inputs[0].name != INPUT:
            names = [i.name for i in inputs]
            raise SchemaViolation(f"this model takes one input tensor named {INPUT!r}, got {names}")
        tensor = inputs[0]
        if tensor.datatype not in NUMERIC_TYPES:
            raise SchemaViolation(f"input {INPUT!r} must be numeric (FP32), got {tensor.datatype}")
        array = tensor.array
        if array.ndim == len(self.instance_shape):  # a single instance without the batch axis
            array = array[None]
        if list(array.shape[1:]) != self.instance_shape or len(array) == 0:
            raise SchemaViolation(
                f"input {INPUT!r} has shape {list(tensor.array.shape)}; this model takes "
                f"[N, {', '.join(map(str, self.instance_shape))}] with N >= 1"
            )
        return self.check_numeric(array.astype("float64", copy=False))

    def _columns_from_v2(self, inputs: list[InferInput]) -> pd.DataFrame:
        given = {i.name: i for i in inputs}
        missing = [c.name for c in self.columns if c.name not in given]
        extra = sorted(set(given) - {c.name for c in self.columns})
        if missing or extra:
            raise SchemaViolation(f"input tensors: missing {missing}, unexpected {extra}")
        data: dict[str, Any] = {}
        for column in self.columns:
            tensor = given[column.name]
            values = tensor.array.reshape(-1)
            if column.type == "category":
                data[column.name] = [v.decode() if isinstance(v, bytes) else v for v in values]
            elif tensor.datatype not in NUMERIC_TYPES:
                raise SchemaViolation(
                    f"input {column.name!r} must be numeric, got {tensor.datatype}"
                )
            else:
                data[column.name] = values.astype("float64")
        lengths = {len(v) for v in data.values()}
        if len(lengths) != 1 or 0 in lengths:
            raise SchemaViolation(
                f"input tensors have different or zero lengths: {sorted(lengths)}"
            )
        return self._check_frame(pd.DataFrame(data))

    # -- v1 -----------------------------------------------------------------------------

    def from_v1(self, instances: Any) -> Inputs:
        if not isinstance(instances, list) or not instances:
            raise BadRequest("'instances' must be a non-empty list")
        if all(isinstance(i, dict) for i in instances):
            return self._from_objects(instances)
        if any(isinstance(i, dict) for i in instances):
            raise BadRequest("'instances' mixes objects and lists")
        if self.per_column:
            frame = pd.DataFrame([list(i) if isinstance(i, list) else [i] for i in instances])
            if frame.shape[1] != len(self.columns):
                raise SchemaViolation(
                    f"each instance needs {len(self.columns)} values in schema order"
                )
            frame.columns = [c.name for c in self.columns]
            return self._check_frame(frame)
        try:
            array = np.array(instances, dtype="float64")
        except (ValueError, TypeError):
            raise SchemaViolation(
                f"instances must be numbers shaped {self.instance_shape} "
                "(or objects keyed by feature)"
            ) from None
        if list(array.shape[1:]) != self.instance_shape:
            raise SchemaViolation(
                f"instances have shape {list(array.shape[1:])}; "
                f"this model takes {self.instance_shape}"
            )
        return self.check_numeric(array)

    def _from_objects(self, instances: list[dict[str, Any]]) -> Inputs:
        if self.schema.kind == "tensor":
            raise SchemaViolation("this model takes tensors: send nested lists, not objects")
        names = [c.name for c in self.columns]
        for position, instance in enumerate(instances):
            missing = [n for n in names if n not in instance]
            extra = sorted(set(instance) - set(names))
            if missing or extra:
                raise SchemaViolation(
                    f"instances[{position}]: missing features {missing[:5]}, "
                    f"unknown features {extra[:5]}"
                )
        frame = pd.DataFrame(
            [[instance[n] for n in names] for instance in instances], columns=names
        )
        if self.per_column:
            return self._check_frame(frame)
        try:
            array = frame.to_numpy(dtype="float64", na_value=np.nan)
        except (ValueError, TypeError):
            bad = next(n for n in names if pd.to_numeric(frame[n], errors="coerce").isna().any())
            raise SchemaViolation(f"feature {bad!r} must be a number") from None
        return self.check_numeric(array)

    # -- checks -------------------------------------------------------------------------

    def check_numeric(self, array: np.ndarray) -> np.ndarray:
        flat = array.reshape(len(array), -1)
        finite = np.isfinite(flat)
        if self.policy.non_finite == "reject" and not finite.all():
            column = int(np.argwhere(~finite)[0][1])
            count = int((~finite).sum())
            raise SchemaViolation(
                f"feature {self.feature_names[column]!r}: {count} NaN or infinite value(s); "
                "this endpoint rejects non-finite inputs (serve.non_finite)"
            )
        if self.policy.out_of_range == "reject":
            outside = finite & ((flat < self.low) | (flat > self.high))
            if outside.any():
                column = int(np.argwhere(outside)[0][1])
                low, high = (
                    self.low[min(column, len(self.low) - 1)],
                    self.high[min(column, len(self.high) - 1)],
                )
                raise SchemaViolation(
                    f"feature {self.feature_names[column]!r}: value outside the allowed range "
                    f"[{low:g}, {high:g}] (serve.out_of_range: reject)"
                )
        return array

    def _check_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        numeric = [c.name for c in self.columns if c.type != "category"]
        for name in numeric:
            converted = pd.to_numeric(frame[name], errors="coerce")
            if converted.isna().any() and not frame[name].isna().all():
                raise SchemaViolation(f"feature {name!r} must be a number")
            frame[name] = converted
        if numeric:
            self.check_numeric_columns(
                frame[numeric].to_numpy(dtype="float64", na_value=np.nan), numeric
            )
        return frame

    def check_numeric_columns(self, values: np.ndarray, names: list[str]) -> None:
        if self.policy.non_finite == "reject" and not np.isfinite(values).all():
            column = int(np.argwhere(~np.isfinite(values))[0][1])
            raise SchemaViolation(
                f"feature {names[column]!r}: NaN or infinite value; this endpoint rejects them"
            )
