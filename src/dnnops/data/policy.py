"""What to do with each data problem at inference time: one policy for the server,
``dnnops predict`` and ``dnnops data validate``, with defaults that do what training did.

| problem | values (default first) | what training did |
| --- | --- | --- |
| missing value | ``impute``, ``reject`` | the training mean; a missing category: all zeros |
| unseen category | ``unknown``, ``reject`` | the one-hot encoding's all-zero "unknown" row |
| out of range | ``accept``, ``clip``, ``reject`` | nothing: a model extrapolates |
| infinity | ``reject``, ``impute`` | imputed the mean (but it is almost always a bug upstream) |

Every accepted problem is counted per feature, so monitoring can show it.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from dnnops.config import ServeConfig
from dnnops.data.preprocess import Preprocessor, table_batch
from dnnops.data.schema import ColumnSchema, Schema, TensorSchema, bounds
from dnnops.data.table import SMALL, TableBatch, lookup
from dnnops.errors import DataError

Anomaly = Literal["missing", "unseen_category", "out_of_range", "non_finite"]
ANOMALIES: tuple[Anomaly, ...] = ("missing", "unseen_category", "out_of_range", "non_finite")
_SETTING = {
    "missing": "serve.missing",
    "unseen_category": "serve.unseen_category",
    "out_of_range": "serve.out_of_range",
    "non_finite": "serve.non_finite",
}
_WORDS = {
    "missing": "missing value(s)",
    "unseen_category": "category value(s) not seen in training",
    "out_of_range": "value(s) outside the training range",
    "non_finite": "infinite value(s)",
}


@dataclass(frozen=True)
class InputPolicy:
    missing: Literal["impute", "reject"] = "impute"
    unseen_category: Literal["unknown", "reject"] = "unknown"
    out_of_range: Literal["accept", "clip", "reject"] = "accept"
    non_finite: Literal["reject", "impute"] = "reject"
    coerce: Literal["strict", "lenient"] = "strict"
    """strict: a JSON boolean is no number and a JSON number no text category (refused,
    naming the feature); lenient: ``true`` reads as 1 and ``3`` as the category "3"."""

    @classmethod
    def of(cls, serve: ServeConfig) -> InputPolicy:
        """The policy a project's ``serve`` section sets (``non_finite: accept`` is the
        older spelling of ``impute``)."""
        return cls(
            missing=serve.missing,
            unseen_category=serve.unseen_category,
            out_of_range=serve.out_of_range,
            non_finite="reject" if serve.non_finite == "reject" else "impute",
            coerce=serve.coerce,
        )

    def refuses(self, anomaly: Anomaly) -> bool:
        return bool(getattr(self, anomaly) == "reject")

    def action(self, anomaly: Anomaly) -> str:
        """In words, what happens to a row with this problem."""
        return {
            "impute": "imputed as in training",
            "unknown": "encoded as unknown (all zeros)",
            "accept": "accepted as is",
            "clip": "clipped to the training range",
            "reject": "refused",
        }[getattr(self, anomaly)]


class PolicyViolation(DataError):
    """Inputs break a ``reject`` policy; names the feature, the problem and the setting."""

    def __init__(self, feature: str, anomaly: Anomaly, rows: int) -> None:
        super().__init__(
            f"feature {feature!r}: {rows} {_WORDS[anomaly]}; refused by {_SETTING[anomaly]}: reject"
        )
        self.feature = feature
        self.anomaly = anomaly


Counts = Counter[tuple[str, Anomaly]]
"""Rows accepted despite a problem, by (feature, problem)."""


def enforce_frame(
    frame: pd.DataFrame, schema: Schema, pre: Preprocessor, *, policy: InputPolicy
) -> tuple[TableBatch, Counts]:
    """A DataFrame's feature columns as a batch held to ``policy``: the path of batch
    prediction and of the Python API on DataFrames (no row-by-row JSON on the way)."""
    return enforce_table(table_batch(pre, frame), schema, policy)


def enforce_table(
    batch: TableBatch, schema: Schema, policy: InputPolicy
) -> tuple[TableBatch, Counts]:
    """Apply ``policy`` to every column: raise on a refused problem, clip where asked,
    and count what was accepted. Numbers are checked as one block (a few array operations
    per request, whatever the column count); categories column by column."""
    limits = _limits(schema)
    counts: Counts = Counter()
    block = batch.numeric_block(limits.names)
    finite = np.isfinite(block)
    outside = finite & ((block < limits.low) | (block > limits.high))
    masks: dict[Anomaly, np.ndarray] = {"out_of_range": outside}
    if not finite.all():  # most requests: no missing or infinite number, two checks
        masks["missing"], masks["non_finite"] = np.isnan(block), np.isinf(block)
    for anomaly, mask in masks.items():
        if mask.any():
            _tally(counts, policy, anomaly, names=limits.names, rows=mask.sum(axis=0))
    for spec in limits.categories:
        keys = batch.columns[spec.name]
        known = limits.known[spec.name]
        if len(keys) <= SMALL and all(k is not None and k in known for k in keys):
            continue
        for anomaly, mask in _category_masks(keys, known).items():
            _tally(counts, policy, anomaly, names=[spec.name], rows=np.array([mask.sum()]))
    if policy.out_of_range == "clip" and masks["out_of_range"].any():
        clipped = np.clip(block, limits.clip_low, limits.clip_high)
        return batch.with_numeric(limits.names, clipped), counts
    return batch, counts


def _tally(
    counts: Counts, policy: InputPolicy, anomaly: Anomaly, *, names: list[str], rows: np.ndarray
) -> None:
    for position in np.flatnonzero(rows):
        if policy.refuses(anomaly):
            raise PolicyViolation(names[position], anomaly, int(rows[position]))
        counts[(names[position], anomaly)] += int(rows[position])


@dataclass(frozen=True)
class _Limits:
    """A schema's numeric columns (numbers and bools) with their allowed and training
    ranges as arrays, and its category columns; computed once per schema."""

    names: list[str]
    low: np.ndarray
    high: np.ndarray
    clip_low: np.ndarray
    clip_high: np.ndarray
    categories: list[ColumnSchema]
    known: dict[str, frozenset[str]]
    """Each category column's training categories."""


def _limits(schema: Schema) -> _Limits:
    cached = schema._limits
    if isinstance(cached, _Limits):
        return cached
    numeric = [c for c in schema.columns if c.type != "category"]
    ranged = [c.type != "bool" and c.min is not None and c.max is not None for c in numeric]
    allowed = [
        bounds(c, schema.range_tolerance) if r else (-np.inf, np.inf)
        for c, r in zip(numeric, ranged, strict=True)
    ]
    limits = _Limits(
        names=[c.name for c in numeric],
        low=np.array([a[0] for a in allowed], dtype="float64"),
        high=np.array([a[1] for a in allowed], dtype="float64"),
        clip_low=np.array([c.min if r else -np.inf for c, r in zip(numeric, ranged, strict=True)]),
        clip_high=np.array([c.max if r else np.inf for c, r in zip(numeric, ranged, strict=True)]),
        categories=[c for c in schema.columns if c.type == "category"],
        known={c.name: frozenset(c.categories or []) for c in schema.columns if c.categories},
    )
    schema._limits = limits
    return limits


def enforce_tensor(
    array: np.ndarray, spec: TensorSchema, tolerance: float, *, policy: InputPolicy, fill: float
) -> tuple[np.ndarray, Counts]:
    """The same for tensor instances: NaN or infinity (non_finite: impute fills ``fill``,
    the value preprocessing maps to 0) and range; one count per instance. Most requests
    have every value finite and in range: two reductions tell (NaN propagates through
    both, an infinity fails ``isfinite``), 2 us against 7.6 us for the masks below."""
    low, high = bounds(spec, tolerance)
    if array.size:
        smallest, largest = float(array.min()), float(array.max())
        if (
            math.isfinite(smallest)
            and math.isfinite(largest)
            and low <= smallest <= largest <= high
        ):
            return array, Counter()
    counts: Counts = Counter()
    flat = array.reshape(len(array), -1)
    finite = np.isfinite(flat)
    bad_rows = int((~finite).any(axis=1).sum())
    if bad_rows:
        if policy.non_finite == "reject":
            raise PolicyViolation(spec.name, "non_finite", bad_rows)
        counts[(spec.name, "non_finite")] += bad_rows
        array = np.where(np.isfinite(array), array, fill)
    outside_rows = int((finite & ((flat < low) | (flat > high))).any(axis=1).sum())
    if outside_rows:
        if policy.out_of_range == "reject":
            raise PolicyViolation(spec.name, "out_of_range", outside_rows)
        counts[(spec.name, "out_of_range")] += outside_rows
        if policy.out_of_range == "clip":
            array = np.clip(array, spec.min, spec.max)
    return array, counts


def _category_masks(keys: np.ndarray, known: frozenset[str]) -> dict[Anomaly, np.ndarray]:
    status = lookup(keys, {k: 0 for k in known} | {None: 1}, default=2)  # missing: None -> 1
    return {"missing": status == 1, "unseen_category": status == 2}
