"""A typical instance of a version's inputs, by feature name: what ``models show`` prints
as a request to copy and what ``dnnops loadtest`` sends when no body is given.

Numbers are the training median (rounded to the column's own precision), booleans the more
common value, categories the most frequent one; a tensor model gets its profile-free
example, zeros of its shape.
"""

from __future__ import annotations

from typing import Any

from dnnops.data.profile import FeatureProfile, Profile
from dnnops.data.schema import ColumnSchema, Schema


def example_instance(schema: Schema, profile: Profile | None) -> dict[str, Any] | list[Any]:
    if schema.kind == "tensor" and schema.tensor is not None:
        return _zeros(list(schema.tensor.shape))
    features = {f.name: f for f in profile.features} if profile is not None else {}
    return {c.name: _typical(c, features.get(c.name)) for c in schema.columns}


def _typical(column: ColumnSchema, feature: FeatureProfile | None) -> Any:
    if column.sensitive:
        return None  # never a training value of a personal or secret column: imputed
    if column.type == "category":
        if feature is not None and feature.frequencies:
            return max(feature.frequencies.items(), key=lambda item: item[1])[0]
        return (column.categories or [""])[0]
    value = _median(column, feature)
    if column.type == "bool":
        return bool(value >= 0.5)
    if column.type == "int":
        return round(value)
    return float(f"{value:.4g}")


def _median(column: ColumnSchema, feature: FeatureProfile | None) -> float:
    if feature is not None and feature.percentiles:
        return float(feature.percentiles[len(feature.percentiles) // 2])
    if feature is not None and feature.mean is not None:
        return float(feature.mean)
    if column.min is not None and column.max is not None:
        return (column.min + column.max) / 2
    return 0.0


def _zeros(shape: list[int]) -> list[Any]:
    if len(shape) == 1:
        return [0.0] * shape[0]
    return [_zeros(shape[1:]) for _ in range(shape[0])]
