"""Service-level indicators from prediction and feedback records, as pure functions.

They are read off the stats merged from the log's digests (``monitor.segments.digest``): one record
per predicted instance (status 200) and one per refused request (its status).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from dnnops.evaluate.decision import Decision
from dnnops.monitor.segments.digest import Stats
from dnnops.monitor.segments.labeled_rows import LabeledRows, class_positions, label_values
from dnnops.vocabulary import Task


@dataclass(frozen=True)
class VersionSlis:
    endpoint: str
    model: str
    version: str
    predictions: int
    failed_requests: int
    success_rate: float
    ingestion_error_rate: float
    """Share of records refused by schema validation (400, 413, 422)."""
    throughput_per_s: float
    traffic_share: float
    """Share of the endpoint's answered predictions; 0 for a shadow, which answers none."""
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    model_latency_p50_ms: float
    """Model-only: from the first batch's start to the last batch's end (no queue, no HTTP)."""
    model_latency_p95_ms: float
    model_latency_p99_ms: float
    confidence_mean: float
    confidence_histogram: list[int]
    seconds_since_last_request: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def slis_from_stats(
    key: tuple[str, str, str],
    stats: Stats,
    served_predictions: int,
    *,
    endpoint_total: int,
    now: float,
    window_s: float,
) -> VersionSlis:
    """The SLIs of one (endpoint, model, version) from its merged window stats;
    ``served_predictions`` excludes shadow copies, which answer no one."""
    failed = stats.requests - stats.predictions
    total = stats.requests
    return VersionSlis(
        endpoint=key[0],
        model=key[1],
        version=key[2],
        predictions=stats.predictions,
        failed_requests=failed,
        success_rate=1.0 if stats.success_rate is None else stats.success_rate,
        ingestion_error_rate=stats.invalid / total if total else 0.0,
        throughput_per_s=stats.predictions / window_s if window_s > 0 else 0.0,
        traffic_share=served_predictions / endpoint_total if endpoint_total else 0.0,
        latency_p50_ms=stats.latency.quantile(0.50),
        latency_p95_ms=stats.latency.quantile(0.95),
        latency_p99_ms=stats.latency.quantile(0.99),
        model_latency_p50_ms=stats.model_latency.quantile(0.50),
        model_latency_p95_ms=stats.model_latency.quantile(0.95),
        model_latency_p99_ms=stats.model_latency.quantile(0.99),
        confidence_mean=stats.confidence_sum / stats.confidence_count
        if stats.confidence_count
        else float("nan"),
        confidence_histogram=list(stats.confidence_histogram),
        seconds_since_last_request=max(0.0, now - stats.last_ts) if stats.last_ts else 0.0,
    )


@dataclass(frozen=True)
class Quality:
    labels: int
    metrics: dict[str, float]
    confusion_matrix: list[list[int]]
    label_lag_p50_s: float
    label_lag_p95_s: float
    classes: list[int | str]
    """The confusion matrix's rows (truth) and columns (predicted), by name."""
    task: Task = "classification"
    residuals: dict[str, list[float]] | None = None
    """A regressor's residuals (predicted - label): ``edges`` and ``counts``."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def quality_of(
    labeled: LabeledRows, classes: Sequence[int | str], decision: Decision | None = None
) -> Quality | None:
    """Accuracy, AUC, FPR/FNR, calibration, the confusion matrix and the label lag of the
    predictions that received a label (labels outside the model's classes are not scored)."""
    if labeled.outputs.shape[1] != len(classes):
        return None
    truth = class_positions(labeled, classes)
    scored = truth >= 0
    if not scored.any():
        return None
    from dnnops.evaluate.metrics import classification_metrics  # sklearn: 1 s to import

    rows = labeled.outputs[scored].astype("float64")
    computed = classification_metrics(truth[scored], rows, decision)
    scalars = {k: float(v) for k, v in computed.items() if isinstance(v, float)}
    lags = (labeled.label_ts - labeled.ts)[scored]
    return Quality(
        int(scored.sum()),
        scalars,
        computed["confusion_matrix"],
        float(np.percentile(lags, 50)),
        float(np.percentile(lags, 95)),
        list(classes),
    )


RESIDUAL_BINS = 20


def regression_quality_of(labeled: LabeledRows) -> Quality | None:
    """MAE, RMSE, R², MAPE and bias (mean of predicted - label, in the target's units), the
    residual histogram and the label lag of the predictions that received a numeric label."""
    if labeled.outputs.shape[1] != 1:
        return None
    values = label_values(labeled)
    scored = ~np.isnan(values)
    if not scored.any():
        return None
    predicted = labeled.outputs[scored, 0].astype("float64")
    truth = values[scored]
    lags = (labeled.label_ts - labeled.ts)[scored]
    from dnnops.evaluate.metrics import regression_metrics

    residual = np.array(predicted) - np.array(truth)
    metrics = regression_metrics(np.array(truth), np.array(predicted))
    metrics["bias"] = float(residual.mean())
    counts, edges = np.histogram(residual, bins=min(RESIDUAL_BINS, max(1, len(residual))))
    return Quality(
        labels=len(predicted),
        metrics={k: v for k, v in metrics.items() if math.isfinite(v)},  # R² of one label: NaN
        confusion_matrix=[],
        label_lag_p50_s=float(np.percentile(lags, 50)),
        label_lag_p95_s=float(np.percentile(lags, 95)),
        classes=[],
        task="regression",
        residuals={"edges": edges.tolist(), "counts": counts.astype(float).tolist()},
    )
