"""Which ground-truth labels can be accepted: their prediction must be in the log, and the
label among the classes of the version that made it. Refused labels are counted by reason,
so a typo'd id or a label spelled differently is seen, not silently ignored."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dnnops.data.schema import category_key
from dnnops.predlog.records import PredictionRecord


@dataclass
class LabelVerdicts:
    accepted: list[tuple[str, Any]] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    """Refused labels by reason: ``unknown_prediction_id``, ``unknown_label``."""
    examples: dict[str, list[str]] = field(default_factory=dict)

    def refuse(self, reason: str, example: str) -> None:
        self.refused[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < 3:
            shown.append(example)


def judge_labels(
    labels: Sequence[tuple[str, Any]],
    records: Iterable[PredictionRecord],
    classes_of: Callable[[str, str], list[Any] | None],
) -> LabelVerdicts:
    """Accept a label when its prediction id was logged (answered, status 200) and the
    label is one of that version's classes (``classes_of(model, version)``; None: any)."""
    wanted = {pid for pid, _ in labels}
    made_by: dict[str, tuple[str, str]] = {}
    for record in records:
        if record.id in wanted and record.answered:
            made_by[record.id] = (record.model, record.version)
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
    return verdicts
