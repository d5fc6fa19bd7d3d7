"""The monitoring report: SLIs, drift, quality on labels and SLO budgets for a window.

Built from per-minute digests of the prediction log (``monitor.segments.digest``), kept on disk for
every settled segment, so a report over a day merges a day of minutes instead of parsing a
day of records. Each served version's reference profile and classes come from the registry
(verified like every load).
"""

from __future__ import annotations

import math
import os
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from dnnops.config import ExplainConfig, MonitorConfig, ObjectiveConfig, SloConfig
from dnnops.errors import DnnopsError
from dnnops.evaluate.decision import Decision
from dnnops.evaluate.explain import importance_shift
from dnnops.monitor.explanations import ExplanationWindow, explanations_in_window, top
from dnnops.monitor.judgements.report_types import (
    ConfidenceShift,
    Cost,
    EstimatedAccuracy,
    Explanations,
    ObjectiveStatus,
    PredictionDrift,
    Report,
    SegmentCounts,
    TierShare,
    TierSplit,
    VersionSection,
)
from dnnops.monitor.judgements.runbooks import page_url
from dnnops.monitor.judgements.sli import (
    Quality,
    VersionSlis,
    quality_of,
    regression_quality_of,
    slis_from_stats,
)
from dnnops.monitor.judgements.slo import (
    BurnAlert,
    BurnRate,
    CountsFor,
    burn_rates,
    burn_rules,
    longest_window_s,
)
from dnnops.monitor.judgements.slo_kinds.kind import Events
from dnnops.monitor.segments.digest import (
    MinuteCounts,
    Reference,
    Stats,
    digest_records,
)
from dnnops.monitor.segments.digest_store import SETTLED_S, DigestStore, fingerprint, segment_key
from dnnops.monitor.segments.label_columns import FeedbackColumns
from dnnops.monitor.segments.label_join import FeedbackSegment, LabelJoin, Segment
from dnnops.monitor.segments.labeled_rows import LabeledRows
from dnnops.monitor.segments.rollup import Rollup, bucket_start
from dnnops.monitor.stats.dataset_drift import DatasetDrift, dataset_drift_from_counts
from dnnops.monitor.stats.drift import (
    category_union,
    drift_from_counts,
    jensen_shannon_distance,
)
from dnnops.plugins import DRIFT_METHODS, SLO_KINDS
from dnnops.predlog.reader import (
    FEEDBACK,
    PREDICTIONS,
    segment_modified,
    segments,
)
from dnnops.predlog.writer import segment_started
from dnnops.registry.loader import LoadedVersion, load_version
from dnnops.registry.versions import ModelRegistry
from dnnops.vocabulary import VersionKey


def build_report(
    registry: ModelRegistry,
    logs_dir: Path,
    window_s: float,
    *,
    monitor: MonitorConfig,
    slo: SloConfig,
    now: float | None = None,
    loaded: Mapping[tuple[str, str], LoadedVersion] | None = None,
    store: DigestStore | None = None,
    remember: dict[tuple[str, str], LoadedVersion | None] | None = None,
) -> Report:
    """``loaded`` holds versions already in memory (a server's), keyed by (model, version),
    so a report asked of a running server does not re-read and re-verify their artifacts;
    ``store`` is the server's digest store, which follows the segments being written;
    ``remember`` keeps the versions this report loaded, for the next one.
    The window covers whole minutes: it starts at the minute ``window_s`` before now."""
    moment = time.time() if now is None else now
    versions = _Versions(registry, dict(loaded or {}))
    if remember is not None:
        versions.known = remember
        remember.update({k: v for k, v in (loaded or {}).items() if k not in remember})
    store = store or digest_store(logs_dir, slo)
    rollup = _rollup(logs_dir, versions, store, slo=slo, moment=moment, window_s=window_s)
    served, served_predictions, endpoint_totals = _per_version(rollup)
    explained = explanations_in_window(logs_dir, rollup.start, moment)
    sections = []
    for key, stats in sorted(served.items()):
        slis = slis_from_stats(
            key,
            stats,
            served_predictions[key],
            endpoint_total=endpoint_totals[key[0]],
            now=moment,
            window_s=window_s,
        )
        labeled = _labeled_of(rollup, key)
        objectives, alerts = _budgets(
            rollup,
            key,
            labeled,
            classes=versions.classes(key),
            decision=versions.decision(key),
            slo=slo,
            now=moment,
            runbooks=monitor.runbook_url,
        )
        section = _version_section(
            versions.get(key[1], key[2]),
            slis,
            stats,
            labeled=labeled.since(rollup.start),
            monitor=monitor,
            now=moment,
            explained=explained.get(key),
        )
        sections.append(replace(section, slo=objectives, alerts=alerts))
    return Report(
        generated_at=moment,
        window_s=window_s,
        window_start=rollup.start,
        records=sum(stats.requests for stats in served.values()),
        segments=SegmentCounts(digested=rollup.digested, from_disk=rollup.reused),
        versions=sections,
    )


def _per_version(
    rollup: Rollup,
) -> tuple[dict[VersionKey, Stats], dict[VersionKey, int], dict[str, int]]:
    """The window's stats per version (served and shadow roles merged), its answered
    predictions, and each endpoint's (shadow copies answer no one, so they are not counted)."""
    served: dict[VersionKey, Stats] = {}
    served_predictions: dict[VersionKey, int] = defaultdict(int)
    endpoint_totals: dict[str, int] = defaultdict(int)
    for (endpoint, model, version, role), stats in rollup.window_stats().items():
        key = (endpoint, model, version)
        served[key] = served.get(key, Stats()).merge(stats)
        if role == "served":
            served_predictions[key] += stats.predictions
            endpoint_totals[endpoint] += stats.predictions
    return served, served_predictions, endpoint_totals


def _budgets(
    rollup: Rollup,
    key: VersionKey,
    labeled: LabeledRows,
    *,
    classes: list[int | str],
    decision: Decision | None,
    slo: SloConfig,
    now: float,
    runbooks: str,
) -> tuple[list[ObjectiveStatus], list[BurnAlert]]:
    """Each objective's compliance and error budget over ``slo.window`` (the SRE Workbook's
    budget period, not the report's window), and its burn-rate alerts."""
    history = [m for (e, mo, v, _), ms in rollup.history.items() if (e, mo, v) == key for m in ms]
    objectives: list[ObjectiveStatus] = []
    alerts: list[BurnAlert] = []
    rules = burn_rules(slo)
    for objective in slo.objectives:
        counts = _counter(objective, history, labeled, classes=classes, decision=decision, now=now)
        bad, total = counts(slo.window)
        rates = burn_rates(objective.target, counts, rules=rules, min_events=slo.min_events)
        objectives.append(_objective(objective, bad, total, window_s=slo.window, rates=rates))
        fired = [rate for rate in rates if rate.firing]
        if fired:  # one alert per condition: the most urgent rule that fires
            worst = max(fired, key=lambda r: (r.severity == "page", r.factor))
            alerts.append(
                BurnAlert(
                    objective.name,
                    worst.severity,
                    worst.factor,
                    worst.long_window_s,
                    worst.short_window_s,
                    worst.long_rate,
                    worst.short_rate,
                    runbook_url=page_url(SLO_KINDS.get(objective.kind).runbook_page, runbooks),
                )
            )
    return objectives, alerts


def reference_lookup(
    registry: ModelRegistry, known: Mapping[tuple[str, str], LoadedVersion]
) -> Callable[[str, str], Reference | None]:
    """(model, version) -> its digest reference, each version loaded at most once."""
    return _Versions(registry, dict(known)).reference


class _Versions:
    """Registry versions by (model, version), each loaded (and verified) at most once."""

    def __init__(self, registry: ModelRegistry, known: dict[tuple[str, str], LoadedVersion]):
        self.registry = registry
        self.known: dict[tuple[str, str], LoadedVersion | None] = dict(known)

    def get(self, model: str, version: str) -> LoadedVersion | None:
        if (model, version) not in self.known:
            self.known[(model, version)] = _load(self.registry, model, version)
        return self.known[(model, version)]

    def reference(self, model: str, version: str) -> Reference | None:
        found = self.get(model, version)
        if found is None:
            return None
        schema = found.schema
        return Reference(
            found.profile,
            schema.feature_names,
            schema.kind == "tensor",
            found.is_regression,
            schema.sensitive_names,
            found.calibrator,
        )

    def classes(self, key: VersionKey) -> list[int | str]:
        found = self.get(key[1], key[2])
        return list(found.classes) if found is not None else []

    def decision(self, key: VersionKey) -> Decision | None:
        found = self.get(key[1], key[2])
        return found.decision if found is not None else None


def digest_store(logs_dir: Path, slo: SloConfig) -> DigestStore:
    """The digests of ``logs_dir``'s prediction log for ``slo``'s latency thresholds."""
    return DigestStore(logs_dir / "digests", fingerprint(latency_thresholds_ms(slo)))


def latency_thresholds_ms(slo: SloConfig) -> list[float]:
    return [
        (o.threshold or 0.0) * 1000 for o in slo.objectives if SLO_KINDS.get(o.kind).slower_than
    ]


def _rollup(
    logs_dir: Path,
    versions: _Versions,
    store: DigestStore,
    *,
    slo: SloConfig,
    moment: float,
    window_s: float,
) -> Rollup:
    """Every prediction segment written within the longest burn window, digested (from the
    digest kept on disk when the segment has not changed since)."""
    # budgets read the whole SLO window (30 d by default) from the minutes' digests
    oldest = moment - max(longest_window_s(burn_rules(slo)), slo.window, window_s)
    thresholds = latency_thresholds_ms(slo)
    built_before = store.built
    # a label comes after its prediction: older feedback segments cannot match any record
    join = LabelJoin(logs_dir / "digests", _feedback_segments(logs_dir, oldest, now=moment))
    rollup = Rollup(moment - window_s, oldest, moment)
    listed = segments(logs_dir / "predictions", "predictions")
    store.prune(listed)

    for segment in listed:
        try:
            status = segment.stat()
        except FileNotFoundError:  # removed by retention since it was listed
            continue
        if status.st_mtime < bucket_start(oldest):
            continue  # last written before the oldest minute any window reaches
        part = _segment(segment, status, now=moment)
        wanted = join.wanted(part, partial(store.id_hashes, segment))
        digest = store.digest(
            segment,
            lambda rs: digest_records(rs, versions.reference, thresholds),
            # before the report's window only the budgets' counts (and label rows) are read
            counts_only=status.st_mtime < rollup.start,
            rows=bool(wanted),
        )
        rollup.add(digest)
        rollup.segments += 1
        join.add(part, wanted, digest.rows)
    rollup.labeled = join.result(rollup.history_start, rollup.end)
    rollup.digested = store.built - built_before
    return rollup


def _feedback_segments(logs_dir: Path, oldest: float, *, now: float) -> list[FeedbackSegment]:
    """The feedback segments a label of the history can be in, their labels read lazily."""
    columns = FeedbackColumns(logs_dir / "digests")
    found = []
    for path in columns.listed(logs_dir / FEEDBACK):
        try:
            status = path.stat()
        except FileNotFoundError:
            continue
        if status.st_mtime >= oldest:
            found.append(
                FeedbackSegment(
                    _segment(path, status, now=now),
                    partial(columns.columns, path),
                )
            )
    return found


def _segment(path: Path, status: os.stat_result, *, now: float) -> Segment:
    return Segment(
        segment_key(path.stem, status),
        segment_started(path),
        status.st_mtime,
        settled=status.st_mtime < now - SETTLED_S,
    )


def predictions_made(
    registry: ModelRegistry,
    logs_dir: Path,
    wanted: set[str],
    *,
    since: float,
    slo: SloConfig,
    loaded: Mapping[tuple[str, str], LoadedVersion] | None = None,
    store: DigestStore | None = None,
) -> dict[str, tuple[str, str]]:
    """Which (model, version) answered each of the ``wanted`` prediction ids logged since
    ``since``, from the segments' digests (the ids a label can score are kept there), so a
    server can tell a label for a real prediction from one for nothing."""
    versions = _Versions(registry, dict(loaded or {}))
    store = store or digest_store(logs_dir, slo)
    thresholds = latency_thresholds_ms(slo)
    looking = np.array(sorted(wanted))
    found: dict[str, tuple[str, str]] = {}
    for segment in segments(logs_dir / PREDICTIONS, PREDICTIONS):
        if segment_modified(segment) < since:
            continue
        digest = store.digest(
            segment, lambda rs: digest_records(rs, versions.reference, thresholds)
        )
        for (_, model, version, role), rows in digest.rows.items():
            if role == "served" and len(rows.ids):
                for pid in rows.ids[np.isin(rows.ids, looking)].tolist():
                    found[str(pid)] = (model, version)
    return found


def _labeled_of(rollup: Rollup, key: VersionKey) -> LabeledRows:
    return LabeledRows.joined(
        [
            rows
            for (endpoint, model, version, _), rows in rollup.labeled.items()
            if (endpoint, model, version) == key
        ]
    )


def _version_section(
    loaded: LoadedVersion | None,
    slis: VersionSlis,
    stats: Stats,
    *,
    labeled: LabeledRows,
    monitor: MonitorConfig,
    now: float,
    explained: ExplanationWindow | None,
) -> VersionSection:
    if loaded is None:
        return VersionSection(slis, error=f"{slis.model}@{slis.version} is not in the registry")
    quality = (
        regression_quality_of(labeled)
        if loaded.is_regression
        else quality_of(labeled, loaded.classes, loaded.decision)
    )
    baseline_accuracy = loaded.record.metrics.get("accuracy")
    drift = _drift(loaded, stats, monitor)
    return VersionSection(
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
        prediction_drift=_prediction_drift(loaded, stats),
        confidence=confidence_shift(slis, loaded.record.metrics),
        baseline_accuracy=float(baseline_accuracy) if baseline_accuracy is not None else None,
        cost=cost_per_prediction(stats, monitor.cpu_second_price, currency=monitor.currency),
        tiers=tier_split(loaded, stats),
    )


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
    """CBPE and ATC over the window's answered predictions (needs the version's calibrator)."""
    calibrator = loaded.calibrator
    if calibrator is None or not stats.estimated_rows:
        return None
    rows = stats.estimated_rows
    cbpe = stats.estimated_correct / rows
    # sampling noise of the window, plus how far the calibration was off on held-out rows
    spread = Z95 * math.sqrt(stats.estimated_variance) / rows + calibrator.held_out_error
    observed = quality.metrics.get("accuracy") if quality is not None else None
    shifted = drift is not None and drift.multivariate is not None and drift.multivariate.drifted
    return EstimatedAccuracy(
        predictions=rows,
        cbpe=cbpe,
        low=max(0.0, cbpe - spread),
        high=min(1.0, cbpe + spread),
        atc=stats.atc_above / rows,
        calibration=calibrator.method,
        reliable=not shifted,
        observed=observed,
        error=cbpe - observed if observed is not None else None,
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


def _load(registry: ModelRegistry, model: str, version: str) -> LoadedVersion | None:
    if not model or not version.isdigit():
        return None
    try:
        return load_version(registry, registry.resolve(model, version))
    except DnnopsError:
        return None


def _drift(loaded: LoadedVersion, stats: Stats, monitor: MonitorConfig) -> DatasetDrift | None:
    if loaded.profile is None or not stats.input_rows:
        return None
    error_mean = stats.pca_error_sum / stats.pca_rows if stats.pca_rows else None
    return dataset_drift_from_counts(
        loaded.profile,
        stats.numeric,
        stats.categories,
        pca_error_mean=error_mean,
        pca_rows=stats.pca_rows,
        rows=stats.input_rows,
        config=monitor.drift,
    )


def freshness(
    last_ts: Mapping[str, float], names: list[str], now: float
) -> dict[str, float | None]:
    """Seconds since the last logged request that carried a value for each feature
    (None: never within the window). Inputs not sampled into the log are not counted."""
    return {name: (now - last_ts[name]) if name in last_ts else None for name in names}


def _prediction_drift(loaded: LoadedVersion, stats: Stats) -> PredictionDrift | None:
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


def _counter(
    objective: ObjectiveConfig,
    history: list[MinuteCounts],
    labeled: LabeledRows,
    *,
    classes: list[int | str],
    decision: Decision | None,
    now: float,
) -> CountsFor:
    """(bad, total) of ``objective`` in the window of a given length ending ``now``
    (whole minutes, as every window of the report), counted as its kind counts."""
    events = Events(history, labeled, classes, decision, now)
    return SLO_KINDS.get(objective.kind).counter(objective, events)


def _objective(
    objective: ObjectiveConfig, bad: int, total: int, *, window_s: float, rates: list[BurnRate]
) -> ObjectiveStatus:
    """Compliance over the SLO window and the share of its error budget left
    (1 - bad / allowed); None while nothing was judged in it."""
    good_share = 1.0 - bad / total if total else None
    allowed = 1.0 - objective.target
    remaining = None if good_share is None else 1.0 - (1.0 - good_share) / allowed
    return ObjectiveStatus(
        name=objective.name,
        kind=objective.kind,
        target=objective.target,
        window_s=window_s,
        current=good_share,
        met=None if good_share is None else good_share >= objective.target,
        error_budget_remaining=remaining,
        events=total,
        burn_rates=rates,
    )
