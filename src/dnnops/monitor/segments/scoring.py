"""How a label scores one answered prediction, the same for the report's time series and
the rollout gates: a classifier's answer is right or wrong, a regressor's is off by an
error."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from dnnops.data.schema import category_key
from dnnops.predlog.records import PredictionRecord


@dataclass(frozen=True)
class Score:
    kind: Literal["class", "value"]
    value: float
    """1.0 right or 0.0 wrong (a class); predicted - label (a value)."""


def score(record: PredictionRecord, label: Any) -> Score | None:
    """The score of an answered prediction ``record`` given its ``label``; None when the
    label cannot score it (a class name sent to a regressor, a missing answer)."""
    if label is None or not record.answered:
        return None
    output = record.output
    if record.probabilities is not None:
        return Score("class", float(category_key(label) == category_key(output)))
    predicted, truth = finite_number(output), finite_number(label)
    if predicted is None or truth is None:
        return None
    return Score("value", predicted - truth)


def finite_number(value: Any) -> float | None:
    """``value`` as a finite number (``"4.5"`` too), or None: a bool, a class name, NaN."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
