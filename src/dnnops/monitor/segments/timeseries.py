"""Time series for the dashboard, made of the digest's own ``Stats``.

Each (version, role, bucket) holds the ``Stats`` the report is made of (``stats_of``: the
same counts, the same success definition, the same quantile sketch) plus the labels that
scored its predictions (``monitor.segments.scoring``, as the rollout gates score them), so a chart,
the report and a canary check never disagree on the same traffic. Both parts merge
exactly: the bucket of a union is the merge of its parts'.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dnnops.monitor.segments.digest import Reference, Stats, stats_of
from dnnops.monitor.segments.scoring import score
from dnnops.predlog.records import PredictionRecord


@dataclass
class Scored:
    """Labels that scored a bucket's predictions."""

    labeled: int = 0
    """A classifier's predictions with a label."""
    correct: int = 0
    valued: int = 0
    """A regressor's predictions with a numeric label."""
    abs_error_sum: float = 0.0
    squared_error_sum: float = 0.0

    def add(self, record: PredictionRecord, label: Any) -> None:
        scored = score(record, label)
        if scored is None:
            return
        if scored.kind == "class":
            self.labeled += 1
            self.correct += int(scored.value)
        else:
            self.valued += 1
            self.abs_error_sum += abs(scored.value)
            self.squared_error_sum += scored.value * scored.value

    def merge(self, other: Scored) -> Scored:
        return Scored(
            self.labeled + other.labeled,
            self.correct + other.correct,
            self.valued + other.valued,
            self.abs_error_sum + other.abs_error_sum,
            self.squared_error_sum + other.squared_error_sum,
        )


@dataclass
class Bucket:
    stats: Stats = field(default_factory=Stats)
    scored: Scored = field(default_factory=Scored)

    def merge(self, other: Bucket) -> Bucket:
        return Bucket(self.stats.merge(other.stats), self.scored.merge(other.scored))

    def point(self) -> dict[str, float | None]:
        """The numbers a chart plots for this bucket."""
        stats, scored = self.stats, self.scored
        return {
            "requests": float(stats.requests),
            "predictions": float(stats.predictions),
            "success_rate": stats.success_rate,
            "refused_share": _share(
                stats.invalid, stats.invalid + stats.predictions + stats.server_errors
            ),
            "latency_p50_ms": _number(stats.latency.quantile(0.50)),
            "latency_p95_ms": _number(stats.latency.quantile(0.95)),
            "latency_p99_ms": _number(stats.latency.quantile(0.99)),
            "confidence_mean": stats.confidence_sum / stats.confidence_count
            if stats.confidence_count
            else None,
            "accuracy": scored.correct / scored.labeled if scored.labeled else None,
            "estimated_accuracy": stats.estimated_correct / stats.estimated_rows
            if stats.estimated_rows
            else None,
            "labels": float(scored.labeled + scored.valued),
            "mae": scored.abs_error_sum / scored.valued if scored.valued else None,
            "rmse": math.sqrt(scored.squared_error_sum / scored.valued) if scored.valued else None,
            "cpu_ms_per_prediction": stats.cpu_ms_sum / stats.cpu_ms_count
            if stats.cpu_ms_count
            else None,
        }


def _share(part: int, whole: int) -> float | None:
    """Refused as invalid (400, 413, 422) of the requests judged: the client errors alert's
    definition (``signal_readings.RecentRequests``)."""
    return part / whole if whole else None


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None


Key = tuple[str, str, float]
"""(version, role, bucket start): role is "served" or "shadow"."""


def summarize(
    records: Iterable[PredictionRecord],
    labels: Mapping[str, Any],
    endpoint: str,
    *,
    start: float,
    bucket_s: float,
    reference: Callable[[str, str], Reference | None] | None = None,
) -> dict[Key, Bucket]:
    """One bucket per version, role and bucket start for ``endpoint``'s records after
    ``start``; with ``reference`` (model, version -> its reference), the buckets also sum
    the calibrated confidence the estimated accuracy is read from."""
    members: dict[Key, list[PredictionRecord]] = defaultdict(list)
    for record in records:
        if record.ts < start or record.endpoint != endpoint:
            continue
        bucket = start + (record.ts - start) // bucket_s * bucket_s
        members[(record.version, record.role, bucket)].append(record)
    out: dict[Key, Bucket] = {}
    for key, group in members.items():
        scored = Scored()
        for record in group:
            scored.add(record, labels.get(record.label_id))
        found = reference(group[0].model, key[0]) if reference is not None else None
        out[key] = Bucket(stats_of(group, found, ()), scored)
    return out


@dataclass(frozen=True)
class Timeline:
    """Aligned columns: ``t`` the bucket starts, each metric a list with None where
    nothing happened, per served version and for the endpoint as a whole."""

    t: list[float]
    bucket_s: float
    versions: dict[str, dict[str, list[float | None]]]
    endpoint: dict[str, list[float | None]]


def series(buckets: Mapping[Key, Bucket], start: float, end: float, *, bucket_s: float) -> Timeline:
    """The buckets as aligned columns per served version and for the endpoint."""
    count = max(1, int(np.ceil((end - start) / bucket_s)))
    times = [start + i * bucket_s for i in range(count)]
    versions = sorted({v for v, role, _ in buckets if role == "served"}, key=_version_order)
    per_version: dict[str, dict[str, list[float | None]]] = {}
    total: dict[float, Bucket] = defaultdict(Bucket)
    for version in versions:
        columns: dict[str, list[float | None]] = defaultdict(list)
        for moment in times:
            bucket = buckets.get((version, "served", moment), Bucket())
            total[moment] = total[moment].merge(bucket)
            for name, value in bucket.point().items():
                columns[name].append(value if bucket.stats.requests else None)
        per_version[version] = dict(columns)
    endpoint: dict[str, list[float | None]] = defaultdict(list)
    for moment in times:
        bucket = total.get(moment, Bucket())
        for name, value in bucket.point().items():
            endpoint[name].append(value if bucket.stats.requests else None)
    return Timeline(times, bucket_s, per_version, dict(endpoint))


def merged(buckets: Iterable[Bucket]) -> Bucket:
    result = Bucket()
    for bucket in buckets:
        result = result.merge(bucket)
    return result


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (1 << 30, version)
