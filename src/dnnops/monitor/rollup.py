"""Digests merged into the numbers of one report: the window's stats per group, per-minute
counts for the burn-rate windows, and the predictions that have received a label.

Memory holds one segment's digest at a time plus what is merged: per group one ``Stats``,
a few integers per minute of history, and the labeled rows (as many as labels, not as
predictions).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dnnops.monitor.digest import BUCKET_S, Digest, MinuteCounts, Stats
from dnnops.monitor.label_columns import LabelColumns
from dnnops.vocabulary import GroupKey


def bucket_start(moment: float) -> float:
    """Windows start on a minute: a report's window is its whole minutes up to now."""
    return moment // BUCKET_S * BUCKET_S


@dataclass
class LabeledRows:
    """Predictions joined with their labels (the newest label of an id wins)."""

    ts: list[float] = field(default_factory=list)
    outputs: list[np.ndarray] = field(default_factory=list)
    """Each prediction's class probabilities, or its predicted value (a regressor's)."""
    labels: list[Any] = field(default_factory=list)
    label_ts: list[float] = field(default_factory=list)

    def since(self, start: float) -> LabeledRows:
        keep = [i for i, ts in enumerate(self.ts) if ts >= start]
        return LabeledRows(
            [self.ts[i] for i in keep],
            [self.outputs[i] for i in keep],
            [self.labels[i] for i in keep],
            [self.label_ts[i] for i in keep],
        )


class Rollup:
    def __init__(
        self,
        start: float,
        history_start: float,
        end: float,
        *,
        labels: LabelColumns,
    ) -> None:
        self.start = bucket_start(start)
        self.history_start = bucket_start(history_start)
        self.end = end
        self.labels = labels
        self._window: dict[GroupKey, list[Stats]] = defaultdict(list)
        self.history: dict[GroupKey, list[MinuteCounts]] = defaultdict(list)
        self.labeled: dict[GroupKey, LabeledRows] = defaultdict(LabeledRows)
        self._index: IdIndex | None = None
        self.segments = 0
        self.digested = 0
        """Segments read and digested; the others' digests came from disk."""

    def window_stats(self) -> dict[GroupKey, Stats]:
        """Each group's stats over the window's minutes."""
        return {key: Stats.merged(parts) for key, parts in self._window.items()}

    @property
    def reused(self) -> int:
        return self.segments - self.digested

    def add(self, digest: Digest) -> None:
        for (key, bucket), stats in digest.stats.items():
            if bucket < self.history_start or bucket > self.end:
                continue
            if bucket >= self.start:
                self._window[key].append(stats)
            self.history[key].append(
                MinuteCounts(
                    bucket,
                    stats.requests,
                    stats.predictions,
                    stats.server_errors,
                    stats.slower_than,
                )
            )
        for key, minutes in digest.counts.items():
            self.history[key].extend(
                m for m in minutes if self.history_start <= m.bucket <= self.end
            )
        if len(self.labels):
            self._join_labels(digest)

    def _join_labels(self, digest: Digest) -> None:
        """The digest's predictions that have a label, joined with it: ids are matched by
        a hash of their characters, in numpy (a 30-day report holds millions of rows)."""
        index = self._label_index()
        for key, rows in digest.rows.items():
            at = index.positions(rows.ids)
            within = (rows.ts >= self.history_start) & (rows.ts <= self.end)
            picked = np.flatnonzero((at >= 0) & within)
            if not len(picked):
                continue
            matched = at[picked]
            joined = self.labeled[key]
            joined.ts += rows.ts[picked].tolist()
            joined.outputs += list(rows.outputs[picked])
            joined.labels += [self.labels.labels[i] for i in matched.tolist()]
            joined.label_ts += self.labels.ts[matched].tolist()

    def _label_index(self) -> IdIndex:
        if self._index is None:
            self._index = IdIndex(self.labels.ids)
        return self._index


class IdIndex:
    """Which of many ids are in a set, in numpy: each id's characters hashed to 64 bits,
    the set's hashes sorted and searched, and every hit confirmed on the id itself."""

    def __init__(self, ids: np.ndarray) -> None:
        hashes = id_hashes(ids)
        self.order = np.argsort(hashes, kind="stable")
        self.hashes, self.ids = hashes[self.order], ids[self.order]

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """For each of ``ids``, its position in the set's ids as given; -1 where absent."""
        out = np.full(len(ids), -1, dtype=np.int64)
        if not len(self.hashes) or not len(ids):
            return out
        hashes = id_hashes(ids)
        at = np.minimum(np.searchsorted(self.hashes, hashes), len(self.hashes) - 1)
        hit = self.hashes[at] == hashes
        hit[hit] = self.ids[at[hit]] == ids[hit]  # a collision is not a match
        out[hit] = self.order[at[hit]]
        return out


def id_hashes(ids: np.ndarray) -> np.ndarray:
    """A 64-bit polynomial hash of each string's code points (the padding of numpy's
    fixed-width strings adds nothing, so equal ids hash equal at any width)."""
    if ids.dtype.kind != "U":
        ids = ids.astype(str)
    width = ids.dtype.itemsize // 4
    if width == 0 or not len(ids):
        return np.zeros(len(ids), dtype=np.uint64)
    points = ids.view(np.uint32).reshape(len(ids), width).astype(np.uint64)
    powers = np.full(width, 1_000_003, dtype=np.uint64) ** np.arange(width, dtype=np.uint64)
    with np.errstate(over="ignore"):
        hashes: np.ndarray = (points * powers).sum(axis=1, dtype=np.uint64)
    return hashes
