"""Each alerting signal of one version, read from its report section: a value where more
is worse, its threshold and its clearing level (``monitor.alerts``), and the evidence an
on-call engineer needs (which features, classes and numbers). A signal that cannot be
judged yet (too few predictions or labels, no reference) has no reading, so it neither
fires nor clears on silence.

The same values are exported as ``dnnops_signal_value`` for the generated Prometheus
rules (``prometheus_rules.signal_rules``), so the report and Prometheus judge one number.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dnnops.config import MonitorConfig, SignalName
from dnnops.monitor.judgements.report_types import SignalReading, VersionSection
from dnnops.monitor.segments.digest import Stats
from dnnops.monitor.stats.drift import category_union, jensen_shannon_distance

if TYPE_CHECKING:
    from dnnops.registry.loader import LoadedVersion

Z95 = 1.96


@dataclass(frozen=True)
class RecentRequests:
    """Requests of the last ``monitor.alerts.client_errors_window``: a flood of bad
    requests is judged while it lasts, not diluted in the report's hour."""

    window_s: float
    requests: int
    refused: int
    """Refused as invalid input (400, 413, 422)."""


@dataclass(frozen=True)
class Context:
    section: VersionSection
    stats: Stats
    loaded: LoadedVersion
    monitor: MonitorConfig
    recent: RecentRequests | None
    now: float


Reader = Callable[[Context], tuple[float, dict[str, Any]] | None]


def read_signals(context: Context) -> list[SignalReading]:
    """Every signal of the section that can be judged and has a threshold."""
    readings = []
    for name, (threshold_of, read) in READERS.items():
        threshold = threshold_of(context.monitor)
        if threshold is None:
            continue
        found = read(context)
        if found is None:
            continue
        value, evidence = found
        clear = threshold * context.monitor.alerts.clear
        readings.append(SignalReading(name, value, threshold, clear, evidence))
    return readings


def _confidence_drop(c: Context) -> tuple[float, dict[str, Any]] | None:
    shift = c.section.confidence
    if shift is None or shift.baseline_mean is None or shift.shift is None:
        return None
    if c.section.slis.predictions < c.monitor.alerts.min_predictions:
        return None
    return -shift.shift, {
        "live_mean": shift.live_mean,
        "test_mean": shift.baseline_mean,
        "predictions": c.section.slis.predictions,
    }


def _estimated_accuracy_drop(c: Context) -> tuple[float, dict[str, Any]] | None:
    estimate, baseline = c.section.estimated_accuracy, c.section.baseline_accuracy
    usable = estimate is not None and (estimate.reliable or estimate.method == "agreement")
    if estimate is None or baseline is None or not usable:
        return None  # shifted inputs and no panel to judge them: flagged, never alerted on
    if estimate.predictions < c.monitor.alerts.min_predictions:
        return None
    return baseline - estimate.value, {
        "estimated": estimate.value,
        "method": estimate.method,
        "interval": [estimate.low, estimate.high] if estimate.method == "cbpe" else None,
        "test_accuracy": baseline,
        "predictions": estimate.predictions,
    }


def _attribution_drift(c: Context) -> tuple[float, dict[str, Any]] | None:
    found = c.section.explanations
    if found is None or found.shift is None or found.drifted is None:
        return None  # drifted is None under monitor.explain.min_explained
    moved = {
        feature: round(share - (found.reference or {}).get(feature, 0.0), 4)
        for feature, share in found.importance.items()
    }
    return found.shift, {
        "explained": found.explained,
        "moved_to": dict(sorted(moved.items(), key=lambda kv: -kv[1])[:5]),
    }


def _label_drift(c: Context) -> tuple[float, dict[str, Any]] | None:
    quality = c.section.quality
    if quality is None or quality.task != "classification":
        return None
    profile = c.loaded.profile
    if profile is None or profile.target is None or quality.labels < c.monitor.alerts.min_labels:
        return None
    arrived = {
        str(name): sum(row)
        for name, row in zip(quality.classes, quality.confusion_matrix, strict=True)
    }
    names, reference, current = category_union(profile.target, arrived)
    shares = {
        name: {
            "training": round(ref / reference.sum(), 4),
            "arrived": round(cur / current.sum(), 4),
        }
        for name, ref, cur in zip(names, reference, current, strict=True)
    }
    return jensen_shannon_distance(reference, current), {
        "labels": quality.labels,
        "classes": shares,
    }


def _production_gap(c: Context) -> tuple[float, dict[str, Any]] | None:
    quality = c.section.quality
    if quality is None or quality.labels < c.monitor.alerts.min_labels:
        return None
    if quality.task == "regression":
        return _mae_increase(c)
    baseline, observed = c.section.baseline_accuracy, quality.metrics.get("accuracy")
    if baseline is None or observed is None:
        return None
    gap = baseline - observed
    noise = Z95 * math.sqrt(max(baseline * (1 - baseline), 1e-9) / quality.labels)
    evidence = {
        "test_accuracy": baseline,
        "production_accuracy": observed,
        "labels": quality.labels,
        "noise": round(noise, 4),
    }
    return (gap if gap > noise else 0.0), evidence


def _mae_increase(c: Context) -> tuple[float, dict[str, Any]] | None:
    quality, baseline = c.section.quality, c.section.baseline_mae
    observed = quality.metrics.get("mae") if quality is not None else None
    if quality is None or baseline is None or observed is None or baseline <= 0:
        return None
    # the same threshold reads as a share of the test MAE: production_gap 0.05 -> 5% worse
    return observed / baseline - 1.0, {
        "test_mae": baseline,
        "production_mae": observed,
        "labels": quality.labels,
    }


def _stale_features(c: Context) -> tuple[float, dict[str, Any]] | None:
    """How far the stalest feature lags the freshest (stopped arriving), or a numeric
    feature whose window fell on one point the training data held under half the time
    (stopped changing: then the lag counts as the whole window)."""
    ages = c.section.feature_freshness_s
    known = [age for age in ages.values() if age is not None]
    if not known or c.section.slis.predictions < c.monitor.alerts.min_predictions:
        return None  # inputs not logged (serve.log_inputs: 0) say nothing of features
    freshest = min(known)
    never = freshest + c.monitor.window  # no value in the whole window
    lag = {name: (never if age is None else age) - freshest for name, age in ages.items()}
    stuck = stuck_features(c.stats, c.loaded, min_rows=c.monitor.alerts.min_predictions)
    for name in stuck:
        lag[name] = max(lag.get(name, 0.0), c.monitor.window)
    worst = dict(sorted(lag.items(), key=lambda kv: -kv[1])[:5])
    return max(lag.values(), default=0.0), {
        "lag_s": {name: round(seconds, 1) for name, seconds in worst.items() if seconds > 0},
        "not_changing": stuck,
    }


def stuck_features(stats: Stats, loaded: LoadedVersion, *, min_rows: int) -> list[str]:
    """Numeric features whose every logged value of the window fell between two adjacent
    points of the training data's percentiles, where training had under half its rows."""
    profile = loaded.profile
    if profile is None:
        return []
    found = []
    for feature in profile.features:
        counts = stats.numeric.get(feature.name)
        points = feature.percentiles
        if not counts or not points or sum(counts) < min_rows:
            continue
        occupied = [k for k, count in enumerate(counts) if count]
        if len(occupied) != 1:
            continue
        k = occupied[0]
        value = points[k - 1] if k else points[0]
        tied = sum(1 for p in points if p == value)
        if tied / len(points) < 0.5:
            found.append(feature.name)
    return found


def _invalid_outputs(c: Context) -> tuple[float, dict[str, Any]] | None:
    stats = c.stats
    if not stats.requests:
        return None
    return stats.invalid_outputs / stats.requests, {
        "invalid_outputs": stats.invalid_outputs,
        "requests": stats.requests,
    }


def _cost(c: Context) -> tuple[float, dict[str, Any]] | None:
    cost = c.section.cost
    if cost is None or cost.per_1k_predictions is None:
        return None
    if c.section.slis.predictions < c.monitor.alerts.min_predictions:
        return None
    return cost.per_1k_predictions / 1000, {
        "cpu_ms_per_prediction": cost.cpu_ms_per_prediction,
        "currency": cost.currency,
        "budget": c.monitor.cost_budget,
    }


def _client_errors(c: Context) -> tuple[float, dict[str, Any]] | None:
    recent = c.recent
    if recent is None or recent.requests < c.monitor.alerts.min_predictions:
        return None  # two refused of three requests is no flood
    return recent.refused / recent.requests, {
        "refused": recent.refused,
        "requests": recent.requests,
        "window_s": recent.window_s,
    }


READERS: dict[SignalName, tuple[Callable[[MonitorConfig], float | None], Reader]] = {
    "confidence_drop": (lambda m: m.alerts.confidence_drop, _confidence_drop),
    "estimated_accuracy_drop": (lambda m: m.alerts.accuracy_drop, _estimated_accuracy_drop),
    "attribution_drift": (lambda m: m.explain.drift_threshold, _attribution_drift),
    "label_drift": (lambda m: m.alerts.label_drift, _label_drift),
    "production_gap": (lambda m: m.alerts.production_gap, _production_gap),
    "stale_features": (lambda m: m.alerts.stale_after, _stale_features),
    "invalid_outputs": (lambda m: m.alerts.invalid_outputs, _invalid_outputs),
    "cost": (lambda m: m.cost_budget, _cost),
    "client_errors": (lambda m: m.alerts.client_errors, _client_errors),
}
"""Each signal's threshold (from the config) and reader."""
