"""One version's signals over a window, judged from its merged stats and its references
(profile, calibrator, metrics on the test split): quality on labels, input and prediction
drift, estimated accuracy, confidence shift, feature freshness, explanations, cost and the
tier split. ``version_section`` puts them together; ``monitor/report.py`` composes the
sections."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from dnnops.config import ExplainConfig, MonitorConfig
from dnnops.evaluate.agreement import estimate_accuracy
from dnnops.evaluate.explain import importance_shift
from dnnops.monitor.judgements.report_types import (
    ConfidenceShift,
    Cost,
    EstimatedAccuracy,
    Explanations,
    PredictionDrift,
    TierShare,
    TierSplit,
    VersionSection,
)
from dnnops.monitor.judgements.signal_readings import Context, RecentRequests, read_signals
from dnnops.monitor.judgements.sli import (
    Quality,
    VersionSlis,
    quality_of,
    regression_quality_of,
)
from dnnops.monitor.segments.digest import Stats
from dnnops.monitor.segments.labeled_rows import LabeledRows
from dnnops.monitor.stats.dataset_drift import DatasetDrift, dataset_drift_from_counts
from dnnops.monitor.stats.drift import category_union, drift_from_counts, jensen_shannon_distance
from dnnops.monitor.stats.embedding_drift import embedding_drift
from dnnops.plugins import DRIFT_METHODS

if TYPE_CHECKING:
    from dnnops.registry.loader import LoadedVersion


@dataclass(frozen=True)
class ExplanationWindow:
    """A version's explanations over a report's window."""

    explained: int
    method: str | None
    importance: dict[str, float]


def top(importance: dict[str, float], count: int = 10) -> dict[str, float]:
    return dict(sorted(importance.items(), key=lambda item: -item[1])[:count])


def version_section(
    loaded: LoadedVersion | None,
    slis: VersionSlis,
    stats: Stats,
    *,
    labeled: LabeledRows,
    monitor: MonitorConfig,
    now: float,
    explained: ExplanationWindow | None,
    recent: RecentRequests | None = None,
) -> VersionSection:
    if loaded is None:
        return VersionSection(slis, error=f"{slis.model}@{slis.version} is not in the registry")
    quality = (
        regression_quality_of(labeled)
        if loaded.is_regression
        else quality_of(labeled, loaded.classes, loaded.decision)
    )
    baseline_accuracy = loaded.record.metrics.get("accuracy")
    baseline_mae = loaded.record.metrics.get("mae")
    drift = input_drift(loaded, stats, monitor)
    section = VersionSection(
        slis,
        quality=quality,
        drift=drift,
        estimated_accuracy=estimated_accuracy(loaded, stats, drift=drift, quality=quality),
        feature_freshness_s=freshness(stats.feature_last_ts, loaded.schema.feature_names, now),
        explainability_coverage=(
            (explained.explained if explained else 0) / slis.predictions
            if slis.predictions
            else None
        ),
        explanations=explanation_summary(loaded, slis, explained, config=monitor.explain),
        prediction_drift=prediction_drift(loaded, stats),
        confidence=confidence_shift(slis, loaded.record.metrics),
        baseline_accuracy=float(baseline_accuracy) if baseline_accuracy is not None else None,
        baseline_mae=float(baseline_mae) if baseline_mae is not None else None,
        gates_passed=loaded.record.gates_passed,
        cost=cost_per_prediction(stats, monitor.cpu_second_price, currency=monitor.currency),
        tiers=tier_split(loaded, stats),
    )
    context = Context(section, stats, loaded, monitor, recent, now)
    return replace(section, signals=read_signals(context))


def tier_split(loaded: LoadedVersion, stats: Stats) -> TierSplit | None:
    """A tiered version's predictions by the tier that answered them."""
    plan = loaded.tiers
    if plan is None:
        return None
    counts = [stats.tiers.get(str(index), 0) for index in range(len(plan.members))]
    total = sum(counts)
    return TierSplit(
        tiers=[
            TierShare(
                tier=index,
                member=member.ref,
                predictions=count,
                share=count / total if total else 0.0,
                threshold=member.threshold,
            )
            for index, (member, count) in enumerate(zip(plan.members, counts, strict=True))
        ],
        escalation_rate=1.0 - counts[0] / total if total else None,
        expected_escalation_rate=1.0 - plan.chosen_on.shares[0],
    )


def explanation_summary(
    loaded: LoadedVersion,
    slis: VersionSlis,
    explained: ExplanationWindow | None,
    *,
    config: ExplainConfig,
) -> Explanations | None:
    """The window's stored explanations against the version's validation profile."""
    if explained is None or not explained.explained:
        return None
    reference = loaded.explanation_reference
    shift = importance_shift(explained.importance, reference.importance) if reference else None
    judged = shift is not None and explained.explained >= config.min_explained
    return Explanations(
        explained=explained.explained,
        coverage=explained.explained / slis.predictions if slis.predictions else 0.0,
        method=explained.method,
        importance=top(explained.importance),
        reference=top(reference.importance) if reference else None,
        shift=shift,
        drifted=(shift is not None and shift > config.drift_threshold) if judged else None,
    )


Z95 = 1.96
"""Two-sided 95% normal quantile: the estimate's interval."""


def estimated_accuracy(
    loaded: LoadedVersion, stats: Stats, *, drift: DatasetDrift | None, quality: Quality | None
) -> EstimatedAccuracy | None:
    """CBPE and ATC over the window's answered predictions (needs the version's calibrator),
    and the agreement panel's estimate, which a window whose inputs shifted uses instead."""
    calibrator = loaded.calibrator
    if calibrator is None or not stats.estimated_rows:
        return None
    rows = stats.estimated_rows
    cbpe = stats.estimated_correct / rows
    # sampling noise of the window, plus how far the calibration was off on held-out rows
    spread = Z95 * math.sqrt(stats.estimated_variance) / rows + calibrator.held_out_error
    observed = quality.metrics.get("accuracy") if quality is not None else None
    shifted = drift is not None and drift.multivariate is not None and drift.multivariate.drifted
    panel, agreement = loaded.agreement, None
    if panel is not None and stats.agreement_rows:
        agreement = estimate_accuracy(panel, stats.agreement_rows, stats.agreement_counts)
    method: Literal["cbpe", "agreement"] = (
        "agreement" if shifted and agreement is not None else "cbpe"
    )
    used = agreement if method == "agreement" and agreement is not None else cbpe
    return EstimatedAccuracy(
        predictions=rows,
        cbpe=cbpe,
        low=max(0.0, cbpe - spread),
        high=min(1.0, cbpe + spread),
        atc=stats.atc_above / rows,
        calibration=calibrator.method,
        reliable=not shifted,
        observed=observed,
        error=used - observed if observed is not None else None,
        agreement=agreement,
        method=method,
    )


def confidence_shift(slis: VersionSlis, metrics: Mapping[str, Any]) -> ConfidenceShift:
    """Live mean top probability against the version's own on its test split: a model
    that grows unsure (or overconfident) on live data shows it here before labels arrive."""
    found = metrics.get("confidence_mean")
    baseline = found if isinstance(found, float) else None
    live = slis.confidence_mean
    shift = live - baseline if baseline is not None and np.isfinite(live) else None
    return ConfidenceShift(live, baseline, shift)


def cost_per_prediction(stats: Stats, cpu_second_price: float, *, currency: str) -> Cost:
    """Model CPU time per prediction (its share of each batch x runner threads) priced at
    ``monitor.cpu_second_price``; the HTTP share is in ``process_cpu_seconds_total``."""
    if not stats.cpu_ms_count:
        return Cost(None, None, currency, cpu_second_price)
    mean_ms = stats.cpu_ms_sum / stats.cpu_ms_count
    return Cost(mean_ms, mean_ms / 1000 * cpu_second_price * 1000, currency, cpu_second_price)


def input_drift(loaded: LoadedVersion, stats: Stats, monitor: MonitorConfig) -> DatasetDrift | None:
    if loaded.profile is None or not stats.input_rows:
        return None
    error_mean = stats.pca_error_sum / stats.pca_rows if stats.pca_rows else None
    embedding = None
    if loaded.embedding is not None and stats.embeddings is not None:
        embedding = embedding_drift(
            loaded.embedding,
            stats.embeddings.embeddings,
            stats.embeddings.seen,
            alpha=monitor.drift.embedding_alpha,
        )
    return dataset_drift_from_counts(
        loaded.profile,
        stats.numeric,
        stats.categories,
        pca_error_mean=error_mean,
        pca_rows=stats.pca_rows,
        rows=stats.input_rows,
        config=monitor.drift,
        embedding=embedding,
    )


def freshness(
    last_ts: Mapping[str, float], names: list[str], now: float
) -> dict[str, float | None]:
    """Seconds since the last logged request that carried a value for each feature
    (None: never within the window). Inputs not sampled into the log are not counted."""
    return {name: (now - last_ts[name]) if name in last_ts else None for name in names}


def prediction_drift(loaded: LoadedVersion, stats: Stats) -> PredictionDrift | None:
    """The predicted classes' distribution against the training labels' (Jensen-Shannon);
    a regressor's predicted values against its own predictions on its test split (KS test,
    then the Wasserstein distance in their standard deviations)."""
    if loaded.is_regression:
        return _predicted_value_drift(loaded, stats)
    if loaded.profile is None or not loaded.profile.target or not stats.classes:
        return None
    names, reference, current = category_union(loaded.profile.target, stats.classes)
    score = jensen_shannon_distance(reference, current)
    threshold = DRIFT_METHODS.get("jensen_shannon").default_threshold
    return PredictionDrift(
        method="jensen_shannon",
        score=score,
        threshold=threshold,
        drifted=score >= threshold,
        classes=names,
        reference=(reference / max(reference.sum(), 1)).tolist(),
        current=(current / max(current.sum(), 1)).tolist(),
    )


def _predicted_value_drift(loaded: LoadedVersion, stats: Stats) -> PredictionDrift | None:
    profile = loaded.profile
    reference = profile.prediction_reference if profile else None
    if reference is None or not sum(stats.predicted_values):
        return None
    found = drift_from_counts(reference, stats.predicted_values, method="ks_wasserstein")
    return PredictionDrift(
        method=found.method,
        score=found.score,
        threshold=found.threshold,
        drifted=found.drifted,
        reference_of="test_predictions" if profile and profile.predicted_values else "target",
        bins=found.bins,
        reference=found.reference,
        current=found.current,
    )
