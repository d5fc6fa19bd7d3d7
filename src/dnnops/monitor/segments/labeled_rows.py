"""Predictions joined with their labels, as columns: what quality, accuracy budgets, label
lag and coverage are computed from."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dnnops.data.schema import category_key
from dnnops.monitor.segments.label_columns import encode_labels
from dnnops.monitor.segments.scoring import finite_number


@dataclass(frozen=True)
class LabeledRows:
    """Predictions joined with their labels (the newest label of an id wins), as columns."""

    ts: np.ndarray
    """(N,) float64: when each prediction was made."""
    outputs: np.ndarray
    """(N, K) float32: each prediction's class probabilities, or (N, 1) its predicted value
    (a regressor's)."""
    codes: np.ndarray
    """(N,) int64: each prediction's label, as its position in ``distinct``."""
    distinct: list[Any]
    label_ts: np.ndarray
    """(N,) float64: when each label arrived."""

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def labels(self) -> list[Any]:
        return [self.distinct[code] for code in self.codes.tolist()]

    @classmethod
    def empty(cls, distinct: list[Any] | None = None) -> LabeledRows:
        nothing = np.array([], dtype="float64")
        return cls(nothing, np.zeros((0, 0), "float32"), np.array([], np.int64), [], nothing)

    @classmethod
    def joined(cls, parts: list[LabeledRows]) -> LabeledRows:
        """The parts as one (the rows of one version under several roles); a version's
        outputs have one width, and parts of another (none in practice) are left out."""
        widths: Counter[int] = Counter()
        for part in parts:
            widths[part.outputs.shape[1]] += len(part)
        if not widths:
            return cls.empty()
        [(width, _)] = widths.most_common(1)
        parts = [p for p in parts if len(p) and p.outputs.shape[1] == width]
        codes, distinct = common_codes([(p.codes, p.distinct) for p in parts])
        return cls(
            np.concatenate([p.ts for p in parts]),
            np.concatenate([p.outputs for p in parts]),
            codes,
            distinct,
            np.concatenate([p.label_ts for p in parts]),
        )

    def since(self, start: float) -> LabeledRows:
        keep = self.ts >= start
        return LabeledRows(
            self.ts[keep], self.outputs[keep], self.codes[keep], self.distinct, self.label_ts[keep]
        )


def class_positions(labeled: LabeledRows, classes: Sequence[int | str]) -> np.ndarray:
    """(N,) int64: each label's position among ``classes`` (3, 3.0 and "3" are one class),
    -1 for a label outside them; computed once per distinct label."""
    index = {category_key(c): i for i, c in enumerate(classes)}
    lookup = [index.get(category_key(label), -1) for label in labeled.distinct]
    positions: np.ndarray = np.array([*lookup, -1], dtype=np.int64)[labeled.codes]
    return positions


def label_values(labeled: LabeledRows) -> np.ndarray:
    """(N,) float64: each label as a finite number (a regressor's), NaN where it is not."""
    lookup = [finite_number(label) for label in labeled.distinct]
    values = np.array([*(math.nan if v is None else v for v in lookup), math.nan])
    out: np.ndarray = values[labeled.codes]
    return out


def common_codes(parts: list[tuple[np.ndarray, list[Any]]]) -> tuple[np.ndarray, list[Any]]:
    """Codes into several lists of distinct labels, recoded against one list."""
    offsets: dict[int, int] = {}  # each list once (the parts of a segment share one)
    merged: list[Any] = []
    for _, distinct in parts:
        if id(distinct) not in offsets:
            offsets[id(distinct)] = len(merged)
            merged += distinct
    recoded, distinct = encode_labels(merged)
    if not parts:
        return np.array([], dtype=np.int64), distinct
    return np.concatenate([recoded[offsets[id(d)] + codes] for codes, d in parts]), distinct
