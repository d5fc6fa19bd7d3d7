"""What ``POST /v1/feedback`` accepts: a label for a prediction this server's log holds,
among the classes of the version that made it. Labels steer the canary's accuracy gate
and retraining, so a label for no prediction, or outside the classes, is refused and
counted, and a second, different label for the same prediction (a re-label) is accepted
(the newest wins) and written to the audit log.

Ids this process answered are remembered as it answers them (a bounded map, oldest out
first); an id it does not know (answered by a sibling worker, or before a restart) is
looked up in the log's digests, in a thread.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dnnops.data.schema import category_key
from dnnops.predlog.labels_check import LabelSpace, LabelVerdicts, Status, judge_labels

Lookup = Callable[[set[str]], Mapping[str, tuple[str, str]]]
"""Prediction ids to the (model, version) that answered them, from the log."""
ClassesOf = Callable[[str, str], LabelSpace]
Known = Callable[[], Mapping[str, Any]]
"""Labels already in the feedback log, by prediction id."""

REMEMBERED = 1_000_000
"""Ids (and labels) kept in memory: about 400 MB at the most (measured in the soak: RSS
grew by ~450 MB while the map filled); older ids are checked against the log's digests."""


@dataclass
class FeedbackVerdicts:
    verdicts: LabelVerdicts
    relabeled: list[tuple[str, str, Any, Any]] = field(default_factory=list)
    """(prediction id, model, label before, label now) of each re-label."""

    def items(self, labels: Sequence[tuple[str, Any]]) -> list[dict[str, str]]:
        again = {pid for pid, _, _, _ in self.relabeled}
        statuses: list[Status | str] = list(self.verdicts.statuses)
        return [
            {"prediction_id": pid, "status": "relabeled" if s == "accepted" and pid in again else s}
            for (pid, _), s in zip(labels, statuses, strict=True)
        ]


class LabelGate:
    def __init__(
        self,
        lookup: Lookup,
        classes_of: ClassesOf,
        known_labels: Known,
        *,
        capacity: int = REMEMBERED,
    ) -> None:
        self._lookup = lookup
        self._classes_of = classes_of
        self._known_labels = known_labels
        self.capacity = capacity
        self._made_by: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._labels: OrderedDict[str, Any] | None = None  # read from the log on first use
        self._lock = threading.Lock()

    def remember(self, ids: Sequence[str], model: str, version: str) -> None:
        """The server answered ``ids`` with ``model@version`` (on the event loop: cheap)."""
        made_by, key = self._made_by, (model, version)
        for pid in ids:
            made_by[pid] = key
        while len(made_by) > self.capacity:
            made_by.popitem(last=False)

    def judge(self, labels: Sequence[tuple[str, Any]]) -> FeedbackVerdicts:
        """Each label's verdict (run in a thread: it may read the log)."""
        made_by: dict[str, tuple[str, str]] = {}
        for pid, _ in labels:  # remember() may evict meanwhile, on the loop: one get each
            found = self._made_by.get(pid)
            if found is not None:
                made_by[pid] = found
        missing = {pid for pid, _ in labels if pid not in made_by}
        if missing:
            made_by.update(self._lookup(missing))
        verdicts = judge_labels(labels, made_by, self._classes_of)
        out = FeedbackVerdicts(verdicts)
        with self._lock:
            known = self._labels_seen()
            for pid, label in verdicts.accepted:
                before = known.get(pid)
                if before is not None and category_key(before) != category_key(label):
                    out.relabeled.append((pid, made_by[pid][0], before, label))
                known[pid] = label
                known.move_to_end(pid)
            while len(known) > self.capacity:
                known.popitem(last=False)
        return out

    def _labels_seen(self) -> OrderedDict[str, Any]:
        if self._labels is None:
            self._labels = OrderedDict(self._known_labels())
        return self._labels


def feedback_answer(labels: Sequence[tuple[str, Any]], judged: FeedbackVerdicts) -> dict[str, Any]:
    """The body of ``/v1/feedback``'s answer: counts, then one status per label."""
    verdicts = judged.verdicts
    return {
        "accepted": len(verdicts.accepted),
        "refused": dict(verdicts.refused),
        "relabeled": len(judged.relabeled),
        "errors": bool(verdicts.refused),
        "items": judged.items(labels),
    }
