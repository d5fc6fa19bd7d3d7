"""Digests merged into the numbers of one report: the window's stats per group, per-minute
counts for the burn-rate windows.

Memory holds one segment's digest at a time plus what is merged: per group one ``Stats``
and a few integers per minute of history. The labels are joined apart
(``monitor.segments.label_join``).
"""

from __future__ import annotations

from collections import defaultdict

from dnnops.monitor.segments.digest import BUCKET_S, Digest, MinuteCounts, Stats
from dnnops.monitor.segments.labeled_rows import LabeledRows
from dnnops.vocabulary import GroupKey


def bucket_start(moment: float) -> float:
    """Windows start on a minute: a report's window is its whole minutes up to now."""
    return moment // BUCKET_S * BUCKET_S


class Rollup:
    def __init__(
        self,
        start: float,
        history_start: float,
        end: float,
    ) -> None:
        self.start = bucket_start(start)
        self.history_start = bucket_start(history_start)
        self.end = end
        self._window: dict[GroupKey, list[Stats]] = defaultdict(list)
        self.history: dict[GroupKey, list[MinuteCounts]] = defaultdict(list)
        self.labeled: dict[GroupKey, LabeledRows] = {}
        """The predictions of the history that received a label (``segments.label_join``)."""
        self.outcomes: dict[str, dict[GroupKey, LabeledRows]] = {}
        """Per KPI, the predictions of the history that received an outcome."""
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
                    stats.invalid,
                    stats.answered_requests,
                )
            )
        for key, minutes in digest.counts.items():
            self.history[key].extend(
                m for m in minutes if self.history_start <= m.bucket <= self.end
            )
