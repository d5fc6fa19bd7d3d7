"""The feedback log as columns: the newest label of each prediction id, for a report.

A report over a 30-day SLO window reads every label of the window (a million at 10% of
10M predictions). Parsing them as JSON records took most of such a report; instead, each
settled feedback segment is kept as columns beside the log (``digests/labels/``: ids,
label codes and times in ``.npz``, loaded with ``allow_pickle=False``, and the distinct
labels as a JSON list), so a segment is parsed once. A file is named after its segment's
size and modification time: a segment that changed is read afresh. The newest label of an
id wins, as in ``predlog.reader.read_feedback``.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from dnnops.monitor.segments.digest_store import SETTLED_S, write_atomically
from dnnops.monitor.stats.ids import id_hashes
from dnnops.predlog.frames import FrameStats, iter_frames
from dnnops.predlog.reader import FEEDBACK, segment_modified, segments
from dnnops.predlog.records import FeedbackRecord, UnreadableRecord

log = logging.getLogger("dnnops.monitor")
FOLDER = "labels"
"""Under the log's digests folder."""


@dataclass(frozen=True)
class LabelColumns:
    """Labels as codes into the few distinct labels they hold, so a million labels are
    joined, compared and kept as integers, not as a million Python objects."""

    ids: np.ndarray
    """(N,) str: the prediction each label is for, unique."""
    codes: np.ndarray
    """(N,) int64: each label's position in ``distinct``."""
    distinct: list[Any]
    ts: np.ndarray
    """(N,) float64: when each label arrived."""

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def labels(self) -> list[Any]:
        return [self.distinct[code] for code in self.codes.tolist()]

    @cached_property
    def hashes(self) -> np.ndarray:
        """(N,) uint64: each id's hash (``rollup.id_hashes``), computed once."""
        return id_hashes(self.ids)

    @classmethod
    def empty(cls) -> LabelColumns:
        return cls(np.array([], dtype=str), np.array([], dtype=np.int64), [], np.array([]))

    @classmethod
    def of(cls, records: list[FeedbackRecord]) -> LabelColumns:
        """In log order, so a later label of an id overrides an earlier one."""
        codes, distinct = encode_labels([r.label for r in records])
        return cls(
            np.array([r.prediction_id for r in records], dtype=str),
            codes,
            distinct,
            np.array([r.ts for r in records], dtype="float64"),
        )

    def newest(self) -> LabelColumns:
        """One label per id: the last one written."""
        if not len(self):
            return self
        # by hash first (fast on a million ids), then exactly among the few hash repeats
        repeated = pd.Index(self.hashes).duplicated(keep=False)
        older = np.zeros(len(self), dtype=bool)
        older[repeated] = pd.Index(self.ids[repeated]).duplicated(keep="last")
        keep = np.flatnonzero(~older)
        return LabelColumns(self.ids[keep], self.codes[keep], self.distinct, self.ts[keep])


def encode_labels(labels: list[Any]) -> tuple[np.ndarray, list[Any]]:
    """Each label's code and the distinct labels. Labels of different JSON types stay
    apart (1 and "1" and True), as they were written; an unhashable label (a list) gets a
    code of its own."""
    known: dict[tuple[str, Any], int] = {}
    distinct: list[Any] = []
    codes = np.empty(len(labels), dtype=np.int64)
    for index, label in enumerate(labels):
        try:
            code = known.setdefault((type(label).__name__, label), len(distinct))
        except TypeError:
            code = len(distinct)
        if code == len(distinct):
            distinct.append(label)
        codes[index] = code
    return codes, distinct


def concatenate(parts: list[LabelColumns]) -> LabelColumns:
    parts = [p for p in parts if len(p)]
    if not parts:
        return LabelColumns.empty()
    codes, distinct = encode_labels([label for p in parts for label in p.distinct])
    shifts = np.cumsum([0] + [len(p.distinct) for p in parts[:-1]])
    return LabelColumns(
        np.concatenate([p.ids for p in parts]),
        np.concatenate([codes[shift + p.codes] for shift, p in zip(shifts, parts, strict=True)]),
        distinct,
        np.concatenate([p.ts for p in parts]),
    )


class FeedbackColumns:
    """The feedback segments of one log as kept columns."""

    def __init__(self, digests_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.folder = digests_dir / FOLDER
        self.clock = clock

    def read(self, feedback_dir: Path, since: float | None = None) -> LabelColumns:
        """The newest label per prediction id, from the segments written since ``since``."""
        listed = self.listed(feedback_dir)
        parts = [
            self.columns(segment)
            for segment in listed
            if since is None or segment_modified(segment) >= since
        ]
        return concatenate(parts).newest()

    def listed(self, feedback_dir: Path) -> list[Path]:
        """The log's feedback segments, oldest first; the columns of deleted ones go."""
        found = segments(feedback_dir, FEEDBACK)
        self._prune({s.stem for s in found})
        return found

    def columns(self, segment: Path) -> LabelColumns:
        """The newest label per id of one segment (kept once it settled)."""
        try:
            status = segment.stat()
        except FileNotFoundError:  # removed by retention since it was listed
            return LabelColumns.empty()
        name = f"{segment.stem}.{status.st_size}.{status.st_mtime_ns}"
        kept = self._load(name)
        if kept is not None:
            return kept
        columns = LabelColumns.of(list(_records(segment.read_bytes()))).newest()
        if status.st_mtime < self.clock() - SETTLED_S:
            try:
                self._save(segment.stem, name, columns)
            except OSError as exc:  # a read-only home: read again next time
                log.warning("could not keep the labels of %s: %s", segment.name, exc)
        return columns

    def _load(self, name: str) -> LabelColumns | None:
        arrays, labels = self.folder / f"{name}.npz", self.folder / f"{name}.json"
        if not labels.exists() or not arrays.exists():
            return None
        try:
            with np.load(arrays, allow_pickle=False) as loaded:
                ids, codes = loaded["label_ids"], loaded["label_codes"]
                ts = loaded["label_times"]
            distinct = orjson.loads(labels.read_bytes())
        except (OSError, ValueError, KeyError):  # damaged or older: read the segment again
            return None
        valid = len(codes) == len(ids) and (not len(codes) or codes.min() >= 0)
        if not isinstance(distinct, list) or not valid or codes.max(initial=-1) >= len(distinct):
            return None
        return LabelColumns(ids, codes.astype(np.int64), distinct, ts)

    def _save(self, stem: str, name: str, columns: LabelColumns) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for stale in self.folder.glob(f"{stem}.*"):
            stale.unlink(missing_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, label_ids=columns.ids, label_codes=columns.codes, label_times=columns.ts)
        write_atomically(self.folder / f"{name}.npz", buffer.getvalue())
        write_atomically(self.folder / f"{name}.json", orjson.dumps(columns.distinct))  # last

    def _prune(self, alive: set[str]) -> None:
        """Drop the columns of segments no longer in the log (retention deleted them)."""
        if not self.folder.is_dir():
            return
        for path in self.folder.iterdir():
            if path.name.split(".", 1)[0] not in alive:
                path.unlink(missing_ok=True)


def _records(data: bytes) -> list[FeedbackRecord]:
    out = []
    for payload in iter_frames(data, FrameStats()):
        try:
            out.append(FeedbackRecord.decode(payload))
        except UnreadableRecord:  # damage: counted by the readers that report it
            continue
    return out
