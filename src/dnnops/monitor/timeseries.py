"""Mergeable per-bucket summaries of the prediction log, and time series built from them.

A ``Summary`` holds only counts and sums (requests, errors, a latency histogram on fixed
bounds, confidence, labels, CPU), so two summaries of adjacent buckets or of two log
segments add up exactly to the summary of their union: a window's numbers come from
merging buckets instead of re-reading every record. Latency percentiles are read off the
histogram (the upper bound of the bucket holding the quantile), which is what Prometheus
does with the same bounds.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dnnops.data.schema import category_key

LATENCY_BOUNDS_MS = (
    0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 250, 500, 1000, 2500, 5000, 10000,
)  # fmt: skip


@dataclass
class Summary:
    requests: int = 0
    """Answered predictions plus refused requests."""
    predictions: int = 0
    server_errors: int = 0
    client_errors: int = 0
    latency_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_MS) + 1))
    confidence_sum: float = 0.0
    labeled: int = 0
    correct: int = 0
    cpu_ms_sum: float = 0.0
    cpu_ms_count: int = 0
    classes: dict[str, int] = field(default_factory=dict)
    valued: int = 0
    """A regressor's predictions with a numeric label."""
    abs_error_sum: float = 0.0
    squared_error_sum: float = 0.0

    def add(self, record: Mapping[str, Any], label: Any | None) -> None:
        self.requests += 1
        status = int(record.get("status", 200))
        if status != 200:
            self.server_errors += status >= 500
            self.client_errors += status < 500
            return
        self.predictions += 1
        latency = float(record.get("latency_ms", 0.0))
        self.latency_counts[int(np.searchsorted(LATENCY_BOUNDS_MS, latency))] += 1
        probabilities = record.get("probabilities")
        if probabilities:  # a classifier's answer
            self.confidence_sum += float(max(probabilities))
            output = category_key(record.get("output"))
            self.classes[output] = self.classes.get(output, 0) + 1
            if label is not None:
                self.labeled += 1
                self.correct += int(category_key(label) == output)
        elif label is not None:  # a regressor's number, scored when the label is one
            error = _error(record.get("output"), label)
            if error is not None:
                self.valued += 1
                self.abs_error_sum += abs(error)
                self.squared_error_sum += error * error
        if "cpu_ms" in record:
            self.cpu_ms_sum += float(record["cpu_ms"])
            self.cpu_ms_count += 1

    def merge(self, other: Summary) -> Summary:
        """The summary of both (neither is changed)."""
        classes = dict(self.classes)
        latency = [a + b for a, b in zip(self.latency_counts, other.latency_counts, strict=True)]
        for name, count in other.classes.items():
            classes[name] = classes.get(name, 0) + count
        return Summary(
            requests=self.requests + other.requests,
            predictions=self.predictions + other.predictions,
            server_errors=self.server_errors + other.server_errors,
            client_errors=self.client_errors + other.client_errors,
            latency_counts=latency,
            confidence_sum=self.confidence_sum + other.confidence_sum,
            labeled=self.labeled + other.labeled,
            correct=self.correct + other.correct,
            cpu_ms_sum=self.cpu_ms_sum + other.cpu_ms_sum,
            cpu_ms_count=self.cpu_ms_count + other.cpu_ms_count,
            classes=classes,
            valued=self.valued + other.valued,
            abs_error_sum=self.abs_error_sum + other.abs_error_sum,
            squared_error_sum=self.squared_error_sum + other.squared_error_sum,
        )

    def latency_quantile_ms(self, q: float) -> float | None:
        total = sum(self.latency_counts)
        if not total:
            return None
        rank = q * total
        seen = 0
        for index, count in enumerate(self.latency_counts):
            seen += count
            if seen >= rank:
                return LATENCY_BOUNDS_MS[min(index, len(LATENCY_BOUNDS_MS) - 1)]
        return LATENCY_BOUNDS_MS[-1]

    def point(self) -> dict[str, float | None]:
        """The numbers a chart plots for this summary."""
        judged = self.predictions + self.server_errors
        return {
            "requests": float(self.requests),
            "predictions": float(self.predictions),
            "success_rate": self.predictions / judged if judged else None,
            "latency_p50_ms": self.latency_quantile_ms(0.50),
            "latency_p95_ms": self.latency_quantile_ms(0.95),
            "latency_p99_ms": self.latency_quantile_ms(0.99),
            "confidence_mean": self.confidence_sum / self.predictions if self.predictions else None,
            "accuracy": self.correct / self.labeled if self.labeled else None,
            "labels": float(self.labeled + self.valued),
            "mae": self.abs_error_sum / self.valued if self.valued else None,
            "rmse": math.sqrt(self.squared_error_sum / self.valued) if self.valued else None,
            "cpu_ms_per_prediction": self.cpu_ms_sum / self.cpu_ms_count
            if self.cpu_ms_count
            else None,
        }


Key = tuple[str, str, float]
"""(version, role, bucket start): role is "served" or "shadow"."""


def summarize(
    records: Iterable[Mapping[str, Any]],
    labels: Mapping[str, Any],
    endpoint: str,
    start: float,
    bucket_s: float,
) -> dict[Key, Summary]:
    """One summary per version, role and bucket for ``endpoint``'s records after ``start``."""
    out: dict[Key, Summary] = defaultdict(Summary)
    for record in records:
        ts = float(record.get("ts", 0.0))
        if ts < start or record.get("endpoint") != endpoint:
            continue
        bucket = start + (ts - start) // bucket_s * bucket_s
        role = "shadow" if record.get("shadow") else "served"
        label = labels.get(str(record.get("shadow_of") or record.get("id")))
        out[(str(record.get("version", "")), role, bucket)].add(record, label)
    return dict(out)


def series(
    summaries: Mapping[Key, Summary], start: float, end: float, bucket_s: float
) -> dict[str, Any]:
    """Aligned columns per served version (and the endpoint as a whole): x is the bucket
    start, each metric a list with None where nothing happened."""
    count = max(1, int(np.ceil((end - start) / bucket_s)))
    times = [start + i * bucket_s for i in range(count)]
    versions = sorted({v for v, role, _ in summaries if role == "served"}, key=_version_order)
    out: dict[str, Any] = {"t": times, "bucket_s": bucket_s, "versions": {}}
    total: dict[float, Summary] = defaultdict(Summary)
    for version in versions:
        columns: dict[str, list[float | None]] = defaultdict(list)
        for moment in times:
            summary = summaries.get((version, "served", moment), Summary())
            total[moment] = total[moment].merge(summary)
            for name, value in summary.point().items():
                columns[name].append(value if summary.requests else None)
        out["versions"][version] = dict(columns)
    endpoint: dict[str, list[float | None]] = defaultdict(list)
    for moment in times:
        summary = total.get(moment, Summary())
        for name, value in summary.point().items():
            endpoint[name].append(value if summary.requests else None)
    out["endpoint"] = dict(endpoint)
    return out


def merged(summaries: Iterable[Summary]) -> Summary:
    result = Summary()
    for summary in summaries:
        result = result.merge(summary)
    return result


def _error(output: Any, label: Any) -> float | None:
    """predicted - label, when both are finite numbers."""
    if isinstance(output, bool) or isinstance(label, bool):
        return None
    try:
        error = float(output) - float(label)
    except (TypeError, ValueError):
        return None
    return error if math.isfinite(error) else None


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (1 << 30, version)
