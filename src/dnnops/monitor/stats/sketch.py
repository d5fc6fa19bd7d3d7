"""A mergeable quantile sketch for positive values such as latencies (DDSketch's buckets).

Values fall into logarithmic buckets whose bounds grow by ``gamma = (1 + a) / (1 - a)``,
so any quantile read back is within relative accuracy ``a`` (1%) of a value of that rank
(Masson, Rim and Lee, "DDSketch", VLDB 2019). Two sketches add up bucket by bucket into
the sketch of the union, whatever order the values came in: per-minute sketches of a day
merge into the day's without keeping a single latency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

RELATIVE_ACCURACY = 0.01
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(GAMMA)
SMALLEST = 1e-6
"""Values at or below this (and non-positive ones) share one bucket read back as 0."""
_ZERO = -(1 << 30)


@dataclass
class QuantileSketch:
    buckets: dict[int, int] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(self.buckets.values())

    def add(self, values: np.ndarray) -> QuantileSketch:
        finite = values[np.isfinite(values)]
        if len(finite) == 0:
            return self
        index = np.full(len(finite), _ZERO, dtype="int64")
        positive = finite > SMALLEST
        index[positive] = np.ceil(np.log(finite[positive]) / _LOG_GAMMA).astype("int64")
        for bucket, count in zip(*np.unique(index, return_counts=True), strict=True):
            self.buckets[int(bucket)] = self.buckets.get(int(bucket), 0) + int(count)
        return self

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        """The sketch of both (neither is changed)."""
        buckets = dict(self.buckets)
        for bucket, count in other.buckets.items():
            buckets[bucket] = buckets.get(bucket, 0) + count
        return QuantileSketch(buckets)

    def quantile(self, q: float) -> float:
        """The value of rank ``q * (count - 1)``, within 1%; NaN when empty."""
        total = self.count
        if total == 0:
            return float("nan")
        rank = q * (total - 1)
        seen = 0
        for bucket in sorted(self.buckets):
            seen += self.buckets[bucket]
            if seen > rank:
                break
        if bucket == _ZERO:
            return 0.0
        return 2 * GAMMA**bucket / (GAMMA + 1)  # the bucket's midpoint in relative terms

    def to_json(self) -> list[list[int]]:
        return [[bucket, count] for bucket, count in sorted(self.buckets.items())]

    @classmethod
    def from_json(cls, pairs: list[list[int]]) -> QuantileSketch:
        return cls({int(bucket): int(count) for bucket, count in pairs})
