"""Digests merged into the numbers of one report: the window's stats per group, per-minute
counts for the burn-rate windows, and the predictions that have received a label.

Memory holds one segment's digest at a time plus what is merged: per group one ``Stats``,
a few integers per minute of history, and the labeled rows (as many as labels, not as
predictions).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dnnops.monitor.digest import BUCKET_S, Digest, MinuteCounts, Stats
from dnnops.predlog.records import FeedbackRecord
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
        labels: Mapping[str, FeedbackRecord],
    ) -> None:
        self.start = bucket_start(start)
        self.history_start = bucket_start(history_start)
        self.end = end
        self.labels = labels
        self._window: dict[GroupKey, list[Stats]] = defaultdict(list)
        self.history: dict[GroupKey, list[MinuteCounts]] = defaultdict(list)
        self.labeled: dict[GroupKey, LabeledRows] = defaultdict(LabeledRows)
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
        if self.labels:
            self._join_labels(digest)

    def _join_labels(self, digest: Digest) -> None:
        """The digest's predictions that have a label, joined with it."""
        for key, rows in digest.rows.items():
            labeled = self.labels.keys() & set(rows.ids.tolist())  # most have none: in C
            if not labeled:
                continue
            joined = self.labeled[key]
            for index in np.flatnonzero(np.isin(rows.ids, list(labeled))):
                if not self.history_start <= rows.ts[index] <= self.end:
                    continue
                label = self.labels[str(rows.ids[index])]
                joined.ts.append(float(rows.ts[index]))
                joined.outputs.append(rows.outputs[index])
                joined.labels.append(label.label)
                joined.label_ts.append(label.ts)
