"""Which ground-truth labels can be accepted: their prediction must be in the log, and the
label among the classes of the version that made it. Refused labels are counted by reason,
so a typo'd id or a label spelled differently is seen, not silently ignored."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from dnnops.data.schema import category_key
from dnnops.predlog.records import PredictionRecord

Status = Literal["accepted", "unknown_prediction_id", "unknown_label"]
NUMBERS: Literal["numbers"] = "numbers"
LabelSpace = list[Any] | Literal["numbers"] | None
"""What a version's labels may be: one of its classes, any finite number (a regressor),
or anything (None: a version the registry no longer has)."""
MadeBy = Mapping[str, tuple[str, str]]
"""Prediction id to the (model, version) that answered it."""


@dataclass
class LabelVerdicts:
    accepted: list[tuple[str, Any]] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    """Refused labels by reason: ``unknown_prediction_id``, ``unknown_label``."""
    examples: dict[str, list[str]] = field(default_factory=dict)
    statuses: list[Status] = field(default_factory=list)
    """One per label, in the order they came."""

    def refuse(self, reason: Status, example: str) -> None:
        self.statuses.append(reason)
        self.refused[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < 3:
            shown.append(example)


def made_by_of(records: Iterable[PredictionRecord], wanted: set[str]) -> dict[str, tuple[str, str]]:
    """Which version answered each of the ``wanted`` prediction ids found in ``records``."""
    return {
        record.id: (record.model, record.version)
        for record in records
        if record.id is not None and record.id in wanted and record.answered
    }


def judge_labels(
    labels: Sequence[tuple[str, Any]],
    made_by: MadeBy,
    classes_of: Callable[[str, str], LabelSpace],
) -> LabelVerdicts:
    """Accept a label when its prediction id was logged (answered, status 200) and the
    label fits that version (``classes_of(model, version)``): one of its classes, or a
    finite number for a regressor."""
    verdicts = LabelVerdicts()
    known: dict[tuple[str, str], set[str] | Literal["numbers"] | None] = {}
    for pid, label in labels:
        if pid not in made_by:
            verdicts.refuse("unknown_prediction_id", pid)
            continue
        key = made_by[pid]
        if key not in known:
            space = classes_of(*key)
            known[key] = space if space in (None, NUMBERS) else {category_key(c) for c in space}
        allowed = known[key]
        fits = (
            _is_number(label)
            if allowed == NUMBERS
            else allowed is None or (category_key(label) in allowed)
        )
        if not fits:
            verdicts.refuse("unknown_label", f"{pid}: {label!r}")
            continue
        verdicts.accepted.append((pid, label))
        verdicts.statuses.append("accepted")
    return verdicts


def _is_number(value: Any) -> bool:
    """A finite number, or text that reads as one (a CSV's "4.5")."""
    if isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
