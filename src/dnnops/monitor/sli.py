"""Service-level indicators from prediction and feedback records, as pure functions.

Records are the dicts the prediction log holds: one per predicted instance (status 200)
and one per refused request (its status). A window is ``[now - window_s, now]``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from dnnops.data.schema import category_key
from dnnops.evaluate.metrics import classification_metrics

CONFIDENCE_BINS = np.linspace(0.0, 1.0, 11)


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


def in_window(
    records: Iterable[Mapping[str, Any]], now: float, window_s: float
) -> list[Mapping[str, Any]]:
    start = now - window_s
    return [r for r in records if start <= float(r.get("ts", 0.0)) <= now]


def version_slis(
    records: Sequence[Mapping[str, Any]], now: float, window_s: float
) -> list[VersionSlis]:
    """One entry per (endpoint, model, version) seen in ``records``."""
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        key = (
            str(record.get("endpoint", "")),
            str(record.get("model", "")),
            str(record.get("version", "")),
        )
        groups[key].append(record)
    per_endpoint: dict[str, int] = defaultdict(int)
    for (endpoint, _, _), members in groups.items():
        per_endpoint[endpoint] += sum(
            1 for r in members if r.get("status") == 200 and not r.get("shadow")
        )
    return [
        _slis(key, members, now, window_s, per_endpoint[key[0]])
        for key, members in sorted(groups.items())
    ]


def _slis(
    key: tuple[str, str, str],
    members: Sequence[Mapping[str, Any]],
    now: float,
    window_s: float,
    endpoint_total: int,
) -> VersionSlis:
    ok = [r for r in members if r.get("status") == 200]
    failed = [r for r in members if r.get("status") != 200]
    invalid = [r for r in failed if r.get("status") in (400, 413, 422)]
    latencies = np.array([float(r.get("latency_ms", np.nan)) for r in ok], dtype="float64")
    model = np.array([float(r.get("model_ms", np.nan)) for r in ok], dtype="float64")
    confidence = np.array(
        [max(r["probabilities"]) for r in ok if r.get("probabilities")], dtype="float64"
    )
    total = len(ok) + len(failed)
    last = max((float(r.get("ts", 0.0)) for r in members), default=now)
    return VersionSlis(
        endpoint=key[0],
        model=key[1],
        version=key[2],
        predictions=len(ok),
        failed_requests=len(failed),
        success_rate=len(ok) / total if total else 1.0,
        ingestion_error_rate=len(invalid) / total if total else 0.0,
        throughput_per_s=len(ok) / window_s if window_s > 0 else 0.0,
        traffic_share=sum(1 for r in ok if not r.get("shadow")) / endpoint_total
        if endpoint_total
        else 0.0,
        latency_p50_ms=_percentile(latencies, 50),
        latency_p95_ms=_percentile(latencies, 95),
        latency_p99_ms=_percentile(latencies, 99),
        model_latency_p50_ms=_percentile(model, 50),
        model_latency_p95_ms=_percentile(model, 95),
        model_latency_p99_ms=_percentile(model, 99),
        confidence_mean=float(confidence.mean()) if len(confidence) else float("nan"),
        confidence_histogram=[int(c) for c in np.histogram(confidence, CONFIDENCE_BINS)[0]],
        seconds_since_last_request=max(0.0, now - last),
    )


def _percentile(values: np.ndarray, q: float) -> float:
    finite = values[np.isfinite(values)]
    return float(np.percentile(finite, q)) if len(finite) else float("nan")


@dataclass(frozen=True)
class Quality:
    labels: int
    metrics: dict[str, float]
    confusion_matrix: list[list[int]]
    label_lag_p50_s: float
    label_lag_p95_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def quality_on_labels(
    predictions: Sequence[Mapping[str, Any]],
    feedback: Iterable[Mapping[str, Any]],
    classes: Sequence[int | str],
) -> Quality | None:
    """Accuracy, AUC, FPR/FNR, calibration and the confusion matrix of the predictions that
    received a label (joined by prediction id, or for a shadow by the id it mirrors; the
    newest label of an id wins)."""
    labels = {str(f["prediction_id"]): f for f in feedback if f.get("prediction_id") is not None}
    index = {category_key(c): i for i, c in enumerate(classes)}
    rows, truth, lags = [], [], []
    for record in predictions:
        label = labels.get(str(record.get("shadow_of") or record.get("id")))
        if label is None or record.get("status") != 200 or not record.get("probabilities"):
            continue
        position = index.get(category_key(label["label"]))
        if position is None:
            continue  # a label outside the model's classes cannot be scored
        rows.append(record["probabilities"])
        truth.append(position)
        lags.append(float(label.get("ts", 0.0)) - float(record.get("ts", 0.0)))
    if not rows:
        return None
    computed = classification_metrics(np.array(truth), np.array(rows, dtype="float64"))
    scalars = {k: float(v) for k, v in computed.items() if isinstance(v, float)}
    return Quality(
        len(rows),
        scalars,
        computed["confusion_matrix"],
        float(np.percentile(lags, 50)),
        float(np.percentile(lags, 95)),
    )
