"""The report's label join: each prediction that received a label, with that label.

A 30-day report joins a million labels with ten million predictions. Joining them afresh
took most of such a report (reading every segment's label rows and looking up ten million
ids). The join of a settled feedback segment with a settled prediction segment never
changes, so it is kept in one ledger beside the digests (``digests/joined/``, loaded
with ``allow_pickle=False``): every pair of a covered feedback segment and a covered
prediction segment is in it. A report joins only what the ledger lacks (segments still
being written, and newly settled ones) and extends the ledger with the settled pairs.

Two filters keep those joins small. A label is written after its prediction, so a feedback
segment last written before a prediction segment was opened holds none of its labels
(with a few minutes' slack for the clocks of a fleet). And each kept digest has the hashes
of its ids (``DigestStore.id_hashes``), so a prediction segment whose ids no label names
is never read.

Segments are named by file name, size and modification time: one that changed or was
deleted (retention) leaves the ledger with its rows.
"""

from __future__ import annotations

import io
import logging
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from dnnops.monitor.segments.digest import LabelRows
from dnnops.monitor.segments.digest_store import write_atomically
from dnnops.monitor.segments.label_columns import LabelColumns
from dnnops.monitor.segments.labeled_rows import LabeledRows, common_codes
from dnnops.monitor.stats.ids import id_hashes
from dnnops.vocabulary import GroupKey

log = logging.getLogger("dnnops.monitor")
LEDGER = "joined"
"""``<digests>/joined/ledger.npz`` and ``ledger.json``."""
CLOCK_SLACK_S = 300.0
"""How far the clocks of a fleet's replicas may disagree."""


@dataclass(frozen=True)
class Segment:
    """A log segment as the join sees it."""

    key: str
    """``<stem>.<size>.<mtime_ns>``: changes whenever the file does."""
    started: float
    modified: float
    settled: bool


@dataclass(frozen=True)
class FeedbackSegment:
    segment: Segment
    labels: Callable[[], LabelColumns]
    """The newest label per id of this segment (read when a join needs it)."""


@dataclass
class Part:
    """Joined rows of one group, from one feedback segment and one prediction segment."""

    feedback: str
    prediction: str
    ids: np.ndarray
    ts: np.ndarray
    outputs: np.ndarray
    codes: np.ndarray
    """Each row's label, as its position in ``distinct`` (the feedback segment's)."""
    distinct: list[Any]
    label_ts: np.ndarray


@dataclass
class _Ledger:
    feedback: set[str] = field(default_factory=set)
    predictions: set[str] = field(default_factory=set)
    parts: dict[GroupKey, list[Part]] = field(default_factory=dict)
    changed: bool = False


class IdIndex:
    """Which of many ids are in a set, in numpy: each id's characters hashed to 64 bits,
    the set's hashes put in a hash table (pandas'), and every hit confirmed on the id."""

    def __init__(self, ids: np.ndarray, hashes: np.ndarray | None = None) -> None:
        self.ids = ids
        hashes = id_hashes(ids) if hashes is None else hashes
        self._table = pd.Index(hashes)
        if not self._table.is_unique:  # two ids of one hash (~1e-8 in a million): sorted
            self._order = np.argsort(hashes, kind="stable")
            self._sorted = hashes[self._order]

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """For each of ``ids``, its position in the set's ids as given; -1 where absent."""
        out = np.full(len(ids), -1, dtype=np.int64)
        if not len(self.ids) or not len(ids):
            return out
        hashes = id_hashes(ids)
        if not self._table.is_unique:
            return self._positions_among_collisions(ids, hashes)
        at = self._table.get_indexer(hashes)
        hit = at >= 0
        at = np.where(hit, at, 0)
        hit[hit] = self.ids[at[hit]] == ids[hit]  # a collision is not a match
        out[hit] = at[hit]
        return out

    def holds_any(self, hashes: np.ndarray) -> bool:
        """Whether any of ``hashes`` is the hash of a member (a collision may say yes)."""
        if self._table.is_unique:
            return bool((self._table.get_indexer(hashes) >= 0).any())
        at = np.minimum(np.searchsorted(self._sorted, hashes), len(self._sorted) - 1)
        return bool((self._sorted[at] == hashes).any())

    def _positions_among_collisions(self, ids: np.ndarray, hashes: np.ndarray) -> np.ndarray:
        """Each id compared with every member of its hash (a run in the sorted hashes)."""
        first = np.searchsorted(self._sorted, hashes, side="left")
        end = np.searchsorted(self._sorted, hashes, side="right")
        out = np.full(len(ids), -1, dtype=np.int64)
        for probe in np.flatnonzero(end > first).tolist():
            for member in self._order[first[probe] : end[probe]].tolist():
                if self.ids[member] == ids[probe]:
                    out[probe] = member
                    break
        return out


HashesOf = Callable[[], np.ndarray | None]


class LabelJoin:
    """One report's join: for each prediction segment of the history, ``wanted`` then
    ``add`` (with its label rows when anything is wanted); then ``result``."""

    def __init__(self, digests_dir: Path, feedback: Sequence[FeedbackSegment]) -> None:
        self.folder = digests_dir / LEDGER
        self.feedback = list(feedback)
        self._order = {f.segment.key: i for i, f in enumerate(self.feedback)}
        self._labels: dict[str, LabelColumns] = {}
        self._indexes: dict[str, IdIndex] = {}
        self.ledger = self._load()
        self._fresh: dict[GroupKey, list[Part]] = {}
        self._listed: set[str] = set()
        self._settled: set[str] = set()
        self.rows_read = 0
        """Prediction segments whose label rows this report read."""

    def wanted(self, prediction: Segment, hashes_of: HashesOf) -> list[FeedbackSegment]:
        """The feedback segments ``prediction`` must be joined with now: those the ledger
        has not joined it with, that can hold its labels."""
        self._listed.add(prediction.key)
        if prediction.settled:
            self._settled.add(prediction.key)
        covered = prediction.key in self.ledger.predictions
        wanted = [
            f
            for f in self.feedback
            if not (covered and f.segment.key in self.ledger.feedback)
            and f.segment.modified >= prediction.started - CLOCK_SLACK_S
        ]
        hashes = hashes_of() if wanted else None
        if hashes is not None:  # only the segments whose labels name one of its ids
            wanted = [f for f in wanted if self._names_any(f, hashes)]
        return wanted

    def add(
        self,
        prediction: Segment,
        wanted: list[FeedbackSegment],
        rows: dict[GroupKey, LabelRows],
    ) -> None:
        """Join the label rows of ``prediction`` with the ``wanted`` feedback segments."""
        if wanted:
            self.rows_read += 1
        for feedback in wanted:
            self._join(feedback, prediction, rows)

    def result(self, start: float, end: float) -> dict[GroupKey, LabeledRows]:
        """Per group, the joined predictions made in [start, end]; of an id labeled in
        several feedback segments, the newest segment's label wins. Saves the ledger."""
        self._settle()
        out = {}
        for key in set(self.ledger.parts) | set(self._fresh):
            parts = self.ledger.parts.get(key, []) + self._fresh.get(key, [])
            parts = [p for p in parts if p.prediction in self._listed]
            joined = _newest(sorted(parts, key=lambda p: self._order[p.feedback]), start, end)
            if len(joined):
                out[key] = joined
        return out

    def _names_any(self, feedback: FeedbackSegment, hashes: np.ndarray) -> bool:
        """Whether a label of ``feedback`` may name one of the ids of ``hashes`` (sorted):
        the smaller side looked up in the larger."""
        labels = self._labels_of(feedback)
        if not len(labels) or not len(hashes):
            return False
        if len(labels) <= len(hashes):
            at = np.minimum(np.searchsorted(hashes, labels.hashes), len(hashes) - 1)
            return bool((hashes[at] == labels.hashes).any())
        return self._index_of(feedback).holds_any(hashes)

    def _index_of(self, feedback: FeedbackSegment) -> IdIndex:
        key = feedback.segment.key
        if key not in self._indexes:
            labels = self._labels_of(feedback)
            self._indexes[key] = IdIndex(labels.ids, labels.hashes)
        return self._indexes[key]

    def _labels_of(self, feedback: FeedbackSegment) -> LabelColumns:
        key = feedback.segment.key
        if key not in self._labels:
            self._labels[key] = feedback.labels()
        return self._labels[key]

    def _join(
        self, feedback: FeedbackSegment, prediction: Segment, rows: dict[GroupKey, LabelRows]
    ) -> None:
        labels = self._labels_of(feedback)
        if not len(labels):
            return
        index = self._index_of(feedback)
        kept = feedback.segment.settled and prediction.settled
        for group, group_rows in rows.items():
            at = index.positions(group_rows.ids)
            picked = np.flatnonzero(at >= 0)
            if not len(picked):
                continue
            matched = at[picked]
            part = Part(
                feedback.segment.key,
                prediction.key,
                group_rows.ids[picked],
                group_rows.ts[picked],
                group_rows.outputs[picked],
                labels.codes[matched],
                labels.distinct,
                labels.ts[matched],
            )
            into = self.ledger.parts if kept else self._fresh
            into.setdefault(group, []).append(part)
            self.ledger.changed |= kept

    def _settle(self) -> None:
        """The ledger now covers every settled feedback segment with every settled
        prediction segment this report listed; what is no longer in the logs leaves it."""
        feedback = {f.segment.key for f in self.feedback if f.segment.settled}
        predictions = set(self._settled)
        before = (self.ledger.feedback, self.ledger.predictions)
        self.ledger.feedback, self.ledger.predictions = feedback, predictions
        for group, parts in list(self.ledger.parts.items()):
            alive = [p for p in parts if p.feedback in feedback and p.prediction in predictions]
            if len(alive) != len(parts):
                self.ledger.changed = True
            self.ledger.parts[group] = alive
        if before != (feedback, predictions):
            self.ledger.changed = True
        if self.ledger.changed:
            try:
                self._save()
            except OSError as exc:  # a read-only home: joined again next time
                log.warning("could not keep the label join: %s", exc)

    def _load(self) -> _Ledger:
        arrays, summary = self.folder / "ledger.npz", self.folder / "ledger.json"
        if not summary.exists() or not arrays.exists():
            return _Ledger()
        try:
            data = orjson.loads(summary.read_bytes())
            ledger = _Ledger(set(data["feedback"]), set(data["predictions"]))
            with np.load(arrays, allow_pickle=False) as loaded:
                if str(loaded["token"]) != data["token"]:  # written by another report since
                    raise ValueError("the ledger's two files are of different writes")
                for i, entry in enumerate(data["parts"]):
                    group = (
                        entry["group"][0],
                        entry["group"][1],
                        entry["group"][2],
                        entry["group"][3],
                    )
                    codes, distinct = loaded[f"codes{i}"], entry["labels"]
                    if len(codes) and not 0 <= codes.min() <= codes.max() < len(distinct):
                        raise ValueError(f"label codes out of range in part {i}")
                    ledger.parts.setdefault(group, []).append(
                        Part(
                            entry["feedback"],
                            entry["prediction"],
                            loaded[f"ids{i}"],
                            loaded[f"ts{i}"],
                            loaded[f"outputs{i}"],
                            codes.astype(np.int64),
                            distinct,
                            loaded[f"label_ts{i}"],
                        )
                    )
        except (OSError, ValueError, KeyError, TypeError, IndexError):  # damaged: joined afresh
            return _Ledger()
        return ledger

    def _save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        entries: list[dict[str, Any]] = []
        arrays: dict[str, np.ndarray] = {}
        index = 0
        for group, parts in self.ledger.parts.items():
            for part in parts:
                entries.append(
                    {
                        "group": list(group),
                        "feedback": part.feedback,
                        "prediction": part.prediction,
                        "labels": part.distinct,
                    }
                )
                arrays |= {
                    f"ids{index}": part.ids,
                    f"ts{index}": part.ts,
                    f"outputs{index}": part.outputs,
                    f"codes{index}": part.codes,
                    f"label_ts{index}": part.label_ts,
                }
                index += 1
        token = os.urandom(8).hex()
        buffer = io.BytesIO()
        np.savez(buffer, token=np.array(token), **arrays)  # type: ignore[arg-type]
        summary = {
            "token": token,
            "feedback": sorted(self.ledger.feedback),
            "predictions": sorted(self.ledger.predictions),
            "parts": entries,
        }
        write_atomically(self.folder / "ledger.npz", buffer.getvalue())
        write_atomically(self.folder / "ledger.json", orjson.dumps(summary))  # read first


def _newest(parts: list[Part], start: float, end: float) -> LabeledRows:
    """The parts as one (in feedback segment order), each id keeping its last label; a
    group's outputs have one width, and parts of another (none in practice) are left out."""
    widths: Counter[int] = Counter()
    for part in parts:
        widths[part.outputs.shape[1]] += len(part.ids)
    if not widths:
        return LabeledRows.empty()
    [(width, _)] = widths.most_common(1)
    parts = [p for p in parts if p.outputs.shape[1] == width]
    ids = np.concatenate([p.ids for p in parts])
    ts = np.concatenate([p.ts for p in parts])
    codes, distinct = common_codes([(p.codes, p.distinct) for p in parts])
    repeated = pd.Index(id_hashes(ids)).duplicated(keep=False)
    older = np.zeros(len(ids), dtype=bool)
    older[repeated] = pd.Index(ids[repeated]).duplicated(keep="last")
    keep = ~older & (ts >= start) & (ts <= end)
    return LabeledRows(
        ts[keep],
        np.concatenate([p.outputs for p in parts])[keep],
        codes[keep],
        distinct,
        np.concatenate([p.label_ts for p in parts])[keep],
    )
