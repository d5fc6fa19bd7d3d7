"""What ``POST /v1/feedback`` accepts: a label for a prediction this server's log holds,
among the classes of the version that made it. Labels steer the canary's accuracy gate
and retraining, so a label for no prediction, or outside the classes, is refused and
counted, and a second, different label for the same prediction (a re-label) is accepted
(the newest wins) and written to the audit log.

Ids this process answered are remembered as it answers them (``AnsweredIds``: bounded,
oldest out first, 12 bytes an id); an id it does not know (answered by a sibling worker,
or before a restart) is looked up in the log's digests, in a thread.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dnnops.data.schema import category_key
from dnnops.predlog.labels_check import LabelSpace, LabelVerdicts, Status, judge_labels

Lookup = Callable[[set[str]], Mapping[str, tuple[str, str]]]
"""Prediction ids to the (model, version) that answered them, from the log."""
ClassesOf = Callable[[str, str], LabelSpace]
Known = Callable[[], Mapping[str, Any]]
"""Labels already in the feedback log, by prediction id."""

REMEMBERED = 1_000_000
"""Answered ids kept in memory (about 12 MB), and labels already received (only as many as
arrive); older ids are checked against the log's digests."""
CHUNK = 16_384
"""Ids held in a plain dict before they are frozen into a sorted array (a freeze takes
about 2 ms on the event loop)."""


class AnsweredIds:
    """Which version answered each recent prediction id, in 12 bytes an id: ids arrive in
    a dict, and every ``CHUNK`` of them is frozen into a sorted array of their 64-bit
    hashes beside a small index of (model, version). Kept as strings in an ordered map,
    a million ids held ~400 MB (measured in the soak). A hash is SipHash under this
    process's random key, so no client can aim a made-up id at a real one; two different
    ids share one by chance about once in 2^64 / 10^6 labels."""

    def __init__(self, capacity: int = REMEMBERED, chunk: int = CHUNK) -> None:
        self.capacity = capacity
        self.chunk = chunk
        self._keys: list[tuple[str, str]] = []
        self._key_index: dict[tuple[str, str], int] = {}
        self._recent: dict[str, int] = {}
        self._frozen: deque[tuple[np.ndarray, np.ndarray]] = deque()
        """(sorted hashes, index into ``_keys``) per frozen chunk, oldest first."""

    def __len__(self) -> int:
        return len(self._recent) + sum(len(hashes) for hashes, _ in self._frozen)

    def add(self, ids: Sequence[str], model: str, version: str) -> None:
        key = (model, version)
        index = self._key_index.get(key)
        if index is None:
            index = self._key_index[key] = len(self._keys)
            self._keys.append(key)
        recent = self._recent
        for pid in ids:
            recent[pid] = index
        if len(recent) >= self.chunk:
            self._freeze()

    def _freeze(self) -> None:
        recent, self._recent = self._recent, {}
        hashes = np.fromiter(map(hash, recent), dtype=np.int64, count=len(recent))
        keys = np.fromiter(recent.values(), dtype=np.int32, count=len(recent))
        order = np.argsort(hashes, kind="stable")
        self._frozen.append((hashes[order], keys[order]))
        while len(self) > self.capacity and self._frozen:
            self._frozen.popleft()

    def get(self, pid: str) -> tuple[str, str] | None:
        index = self._recent.get(pid)
        if index is not None:
            return self._keys[index]
        wanted = hash(pid)
        # newest first; a copy, since remember() may freeze meanwhile on the event loop
        for hashes, keys in reversed(tuple(self._frozen)):
            at = int(np.searchsorted(hashes, wanted))
            if at < len(hashes) and int(hashes[at]) == wanted:
                return self._keys[int(keys[at])]
        return None


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
        self._made_by = AnsweredIds(capacity)
        self._labels: OrderedDict[str, Any] | None = None  # read from the log on first use
        self._lock = threading.Lock()

    def remember(self, ids: Sequence[str], model: str, version: str) -> None:
        """The server answered ``ids`` with ``model@version`` (on the event loop: cheap)."""
        self._made_by.add(ids, model, version)

    def made_by(self, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """The (model, version) that answered each of ``ids`` this server knows (run in a
        thread: an id not remembered is looked up in the log)."""
        made_by: dict[str, tuple[str, str]] = {}
        for pid in ids:  # remember() may freeze meanwhile, on the loop: one get each
            found = self._made_by.get(pid)
            if found is not None:
                made_by[pid] = found
        missing = {pid for pid in ids if pid not in made_by}
        if missing:
            made_by.update(self._lookup(missing))
        return made_by

    def judge(self, labels: Sequence[tuple[str, Any]]) -> FeedbackVerdicts:
        """Each label's verdict (run in a thread: it may read the log)."""
        made_by = self.made_by([pid for pid, _ in labels])
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
