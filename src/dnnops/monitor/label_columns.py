"""The feedback log as columns: the newest label of each prediction id, for a report.

A report over a 30-day SLO window reads every label of the window (a million at 10% of
10M predictions). Parsing them as JSON records took most of such a report; instead, each
settled feedback segment is kept as columns beside the log (``digests/labels/``: ids and
times in ``.npz``, loaded with ``allow_pickle=False``, and the labels as a JSON list), so a
segment is parsed once. A file is named after its segment's size and modification time:
a segment that changed is read afresh. The newest label of an id wins, as in
``predlog.reader.read_feedback``.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from dnnops.monitor.digest_store import SETTLED_S, write_atomically
from dnnops.predlog.frames import FrameStats, iter_frames
from dnnops.predlog.reader import FEEDBACK, segment_modified, segments
from dnnops.predlog.records import FeedbackRecord, UnreadableRecord

log = logging.getLogger("dnnops.monitor")
FOLDER = "labels"
"""Under the log's digests folder."""


@dataclass(frozen=True)
class LabelColumns:
    ids: np.ndarray
    """(N,) str: the prediction each label is for, unique."""
    labels: list[Any]
    ts: np.ndarray
    """(N,) float64: when each label arrived."""

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def empty(cls) -> LabelColumns:
        return cls(np.array([], dtype=str), [], np.array([], dtype="float64"))

    @classmethod
    def of(cls, records: list[FeedbackRecord]) -> LabelColumns:
        """In log order, so a later label of an id overrides an earlier one."""
        return cls(
            np.array([r.prediction_id for r in records], dtype=str),
            [r.label for r in records],
            np.array([r.ts for r in records], dtype="float64"),
        )

    def newest(self) -> LabelColumns:
        """One label per id: the last one written."""
        if not len(self):
            return self
        keep = np.flatnonzero(~pd.Index(self.ids).duplicated(keep="last"))
        return LabelColumns(self.ids[keep], [self.labels[i] for i in keep], self.ts[keep])


def concatenate(parts: list[LabelColumns]) -> LabelColumns:
    parts = [p for p in parts if len(p)]
    if not parts:
        return LabelColumns.empty()
    return LabelColumns(
        np.concatenate([p.ids for p in parts]),
        [label for p in parts for label in p.labels],
        np.concatenate([p.ts for p in parts]),
    )


class FeedbackColumns:
    """The feedback segments of one log as kept columns."""

    def __init__(self, digests_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.folder = digests_dir / FOLDER
        self.clock = clock

    def read(self, feedback_dir: Path, since: float | None = None) -> LabelColumns:
        """The newest label per prediction id, from the segments written since ``since``."""
        listed = segments(feedback_dir, FEEDBACK)
        self._prune({s.stem for s in listed})
        parts = [
            self._columns(segment)
            for segment in listed
            if since is None or segment_modified(segment) >= since
        ]
        return concatenate(parts).newest()

    def _columns(self, segment: Path) -> LabelColumns:
        try:
            status = segment.stat()
        except FileNotFoundError:  # removed by retention since it was listed
            return LabelColumns.empty()
        name = f"{segment.stem}.{status.st_size}.{status.st_mtime_ns}"
        kept = self._load(name)
        if kept is not None:
            return kept
        columns = LabelColumns.of(list(_records(segment.read_bytes())))
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
                ids, ts = loaded["label_ids"], loaded["label_times"]
            values = orjson.loads(labels.read_bytes())
        except (OSError, ValueError, KeyError):  # damaged: read from the segment again
            return None
        if not isinstance(values, list) or len(values) != len(ids):
            return None
        return LabelColumns(ids, values, ts)

    def _save(self, stem: str, name: str, columns: LabelColumns) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for stale in self.folder.glob(f"{stem}.*"):
            stale.unlink(missing_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, label_ids=columns.ids, label_times=columns.ts)
        write_atomically(self.folder / f"{name}.npz", buffer.getvalue())
        write_atomically(self.folder / f"{name}.json", orjson.dumps(columns.labels))  # last

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
