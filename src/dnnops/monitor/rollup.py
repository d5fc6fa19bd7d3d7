"""Digests merged into the numbers of one report: the window's stats per group, per-minute
counts for the burn-rate windows, and the predictions that have received a label.

Memory holds one segment's digest at a time plus what is merged: per group one ``Stats``,
a few integers per minute of history, and the labeled rows (as many as labels, not as
predictions).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dnnops.data.schema import category_key
from dnnops.monitor.digest import BUCKET_S, Digest, MinuteCounts, Stats
from dnnops.monitor.label_columns import LabelColumns, id_hashes
from dnnops.monitor.scoring import finite_number
from dnnops.vocabulary import GroupKey


def bucket_start(moment: float) -> float:
    """Windows start on a minute: a report's window is its whole minutes up to now."""
    return moment // BUCKET_S * BUCKET_S


@dataclass(frozen=True)
class LabeledRows:
    """Predictions joined with their labels (the newest label of an id wins), as columns."""

    ts: np.ndarray
    """(N,) float64: when each prediction was made."""
    outputs: np.ndarray
    """(N, K) float32: each prediction's class probabilities, or (N, 1) its predicted value
    (a regressor's)."""
    codes: np.ndarray
    """(N,) int64: each prediction's label, as its position in ``distinct``."""
    distinct: list[Any]
    label_ts: np.ndarray
    """(N,) float64: when each label arrived."""

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def labels(self) -> list[Any]:
        return [self.distinct[code] for code in self.codes.tolist()]

    @classmethod
    def empty(cls, distinct: list[Any] | None = None) -> LabeledRows:
        nothing = np.array([], dtype="float64")
        return cls(nothing, np.zeros((0, 0), "float32"), np.array([], np.int64), [], nothing)

    @classmethod
    def joined(cls, parts: list[LabeledRows]) -> LabeledRows:
        """The parts (sharing one ``distinct``) as one; a version's outputs have one width,
        and parts of another width (none in practice) are left out rather than mixed."""
        parts = [part for part in parts if len(part)]
        if not parts:
            return cls.empty()
        rows_by_width: Counter[int] = Counter()
        for part in parts:
            rows_by_width[part.outputs.shape[1]] += len(part)
        [(width, _)] = rows_by_width.most_common(1)
        parts = [p for p in parts if p.outputs.shape[1] == width]
        return cls(
            np.concatenate([p.ts for p in parts]),
            np.concatenate([p.outputs for p in parts]),
            np.concatenate([p.codes for p in parts]),
            parts[0].distinct,
            np.concatenate([p.label_ts for p in parts]),
        )

    def since(self, start: float) -> LabeledRows:
        keep = self.ts >= start
        return LabeledRows(
            self.ts[keep], self.outputs[keep], self.codes[keep], self.distinct, self.label_ts[keep]
        )


def class_positions(labeled: LabeledRows, classes: Sequence[int | str]) -> np.ndarray:
    """(N,) int64: each label's position among ``classes`` (3, 3.0 and "3" are one class),
    -1 for a label outside them; computed once per distinct label."""
    index = {category_key(c): i for i, c in enumerate(classes)}
    lookup = [index.get(category_key(label), -1) for label in labeled.distinct]
    positions: np.ndarray = np.array([*lookup, -1], dtype=np.int64)[labeled.codes]
    return positions


def label_values(labeled: LabeledRows) -> np.ndarray:
    """(N,) float64: each label as a finite number (a regressor's), NaN where it is not."""
    lookup = [finite_number(label) for label in labeled.distinct]
    values = np.array([*(math.nan if v is None else v for v in lookup), math.nan])
    out: np.ndarray = values[labeled.codes]
    return out


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
        self.labeled: dict[GroupKey, list[LabeledRows]] = defaultdict(list)
        """Per group, the joined rows of each digest (``LabeledRows.joined`` makes them one)."""
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
            self.labeled[key].append(
                LabeledRows(
                    rows.ts[picked],
                    rows.outputs[picked],
                    self.labels.codes[matched],
                    self.labels.distinct,
                    self.labels.ts[matched],
                )
            )

    def _label_index(self) -> IdIndex:
        if self._index is None:
            self._index = IdIndex(self.labels.ids, self.labels.hashes)
        return self._index


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
        if self._table.is_unique:
            at = self._table.get_indexer(hashes)
            hit = at >= 0
            at = np.where(hit, at, 0)
        else:
            return self._positions_among_collisions(ids, hashes)
        hit[hit] = self.ids[at[hit]] == ids[hit]  # a collision is not a match
        out[hit] = at[hit]
        return out

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
