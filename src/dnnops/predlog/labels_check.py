"""Which ground-truth labels can be accepted: their prediction must be in the log, and the
label among the classes of the version that made it. Refused labels are counted by reason,
so a typo'd id or a label spelled differently is seen, not silently ignored."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from dnnops.data.schema import category_key
from dnnops.predlog.records import PredictionRecord

Status = Literal["accepted", "unknown_prediction_id", "unknown_label"]
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
    classes_of: Callable[[str, str], list[Any] | None],
) -> LabelVerdicts:
    """Accept a label when its prediction id was logged (answered, status 200) and the
    label is one of that version's classes (``classes_of(model, version)``; None: any)."""
    verdicts = LabelVerdicts()
    known: dict[tuple[str, str], set[str] | None] = {}
    for pid, label in labels:
        if pid not in made_by:
            verdicts.refuse("unknown_prediction_id", pid)
            continue
        key = made_by[pid]
        if key not in known:
            classes = classes_of(*key)
            known[key] = None if classes is None else {category_key(c) for c in classes}
        allowed = known[key]
        if allowed is not None and category_key(label) not in allowed:
            verdicts.refuse("unknown_label", f"{pid}: {label!r}")
            continue
        verdicts.accepted.append((pid, label))
        verdicts.statuses.append("accepted")
    return verdicts
