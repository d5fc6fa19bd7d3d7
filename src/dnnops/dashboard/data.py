"""Everything the dashboard's three views show for one endpoint, as one document
(``document.py`` types it).

The same document feeds the live page (polled from ``/v1/dashboard/NAME``) and the static
report (``dnnops monitor report --html``), so both always agree.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from dnnops.config import MonitorConfig, SloConfig
from dnnops.dashboard.document import (
    DashboardDocument,
    DashboardSeries,
    FeatureDistribution,
    Health,
    MediaSamples,
    VersionRow,
)
from dnnops.data.profile import Profile
from dnnops.data.schema import Schema
from dnnops.errors import DnnopsError
from dnnops.monitor.judgements.report_types import Report, VersionSection
from dnnops.monitor.report import build_report, reference_lookup
from dnnops.monitor.segments.digest import logged_descriptors, logged_inputs
from dnnops.monitor.segments.digest_store import DigestStore
from dnnops.monitor.segments.timeseries import series, summarize
from dnnops.monitor.stats.dataset_drift import as_feature_frame, dataset_drift
from dnnops.monitor.stats.drift import FeatureDrift, bin_counts
from dnnops.predlog.reader import FEEDBACK, PREDICTIONS, read_labels, read_predictions
from dnnops.predlog.records import PredictionRecord
from dnnops.registry.alerts import AlertStore
from dnnops.registry.loader import LoadedVersion, load_version
from dnnops.registry.versions import ModelRegistry
from dnnops.rollout.begin import REPLAY
from dnnops.rollout.store import RolloutStore

MAX_BUCKETS = 60
MIN_DRIFT_ROWS = 20
"""Fewer logged inputs in a bucket than this give no drift point (too noisy to plot)."""
FEATURES_SHOWN = 12


def dashboard_data(
    registry: ModelRegistry,
    logs_dir: Path,
    endpoint: str,
    *,
    window_s: float,
    monitor: MonitorConfig,
    slo: SloConfig,
    loaded: Mapping[tuple[str, str], LoadedVersion] | None = None,
    live: Mapping[str, Any] | None = None,
    now: float | None = None,
    store: DigestStore | None = None,
    report: Report | None = None,
) -> DashboardDocument:
    """``live`` is the server's view of the endpoint (weights, rollout); without a server
    (the static report) it is rebuilt from the registry. ``report``: one already built
    for this window (its time is the page's), so a page of several endpoints builds one."""
    known = dict(loaded or {})
    if report is None:
        report = build_report(
            registry,
            logs_dir,
            window_s,
            monitor=monitor,
            slo=slo,
            now=time.time() if now is None else now,
            loaded=known,
            store=store,
        )
    moment = report.generated_at
    start = moment - window_s
    bucket_s = _bucket(window_s)
    sections = report.of_endpoint(endpoint).versions
    records = [
        r
        for r in read_predictions(logs_dir / PREDICTIONS, since=start)
        if r.ts >= start and r.endpoint == endpoint
    ]
    labels = read_labels(logs_dir / FEEDBACK, since=start)  # a label never predates its prediction
    model = sections[0].slis.model if sections else endpoint
    current = _current_version(registry, model, live)
    reference = _reference(registry, model, current, known=known)
    summaries = summarize(
        records,
        labels,
        endpoint,
        start=start,
        bucket_s=bucket_s,
        reference=reference_lookup(registry, known),
    )
    timeline = series(summaries, start, moment, bucket_s=bucket_s)
    drift_share = _drift_series(
        records, reference, monitor, start=start, bucket_s=bucket_s, end=moment
    )
    columns = {f.name: getattr(timeline, f.name) for f in fields(timeline)}
    return DashboardDocument(
        endpoint=endpoint,
        model=model,
        generated_at=moment,
        window_s=window_s,
        current_version=current,
        task="regression"
        if reference is not None and reference.is_regression
        else "classification",
        cpu_second_price=monitor.cpu_second_price,
        versions=_versions(registry, model),
        sections=list(sections),
        series=DashboardSeries(**columns, drift_share=drift_share),
        features=_feature_distributions(sections, reference, records, current=current),
        health=health_score(sections, current),
        live=dict(live) if live is not None else None,
        rollouts=[r.summary() for r in RolloutStore(registry.engine).history(endpoint, limit=10)],
        decisions=registry.audit_log(model, limit=30),
        replays=[
            entry | entry["details"]
            for entry in registry.audit_log(model, limit=500)
            if entry["action"] == REPLAY
        ][:10],
        alerts=AlertStore(registry.engine).list(limit=50, model=model),
        samples=_media_samples(records, reference),
    )


HEALTH_WEIGHTS = {"slo": 40, "drift": 30, "quality": 30}
FAILED_GATES_CAP = 79
"""The most a version that failed its evaluation gates scores: below the page's "good"."""


def health_score(sections: Sequence[VersionSection], current: str | None) -> Health:
    """0-100 for the version taking the traffic: the share of its SLOs met (40), how little
    of its input drifted (30), and its quality on labels against its own test score, or
    its live confidence against its test confidence before labels arrive (30). A part with
    no data is unknown and left out (the others scaled to 100), never full marks; a
    version that failed its gates scores at most ``FAILED_GATES_CAP``."""
    section = next((s for s in sections if s.slis.version == current), None)
    if section is None:
        return Health(None)
    parts = {
        "slo": _slo_part(section),
        "drift": 1.0 - section.drift.share if section.drift is not None else None,
        "quality": _quality_part(section),
    }
    known = {name: value for name, value in parts.items() if value is not None}
    if not known:
        return Health(None, parts)
    weight = sum(HEALTH_WEIGHTS[name] for name in known)
    score = round(100 * sum(HEALTH_WEIGHTS[n] * v for n, v in known.items()) / weight)
    if section.gates_passed is False and score > FAILED_GATES_CAP:
        return Health(FAILED_GATES_CAP, parts, "the version failed its evaluation gates")
    return Health(score, parts)


def _slo_part(section: VersionSection) -> float | None:
    """The share of the objectives met, of those with data to judge."""
    judged = [o for o in section.slo if o.met is not None]
    return sum(o.met is True for o in judged) / len(judged) if judged else None


def _quality_part(section: VersionSection) -> float | None:
    """Live quality against the version's own test score: accuracy on labels, MAE on
    labels (a regressor's), or before labels its confidence; None with none of them."""
    quality = section.quality.metrics if section.quality else {}
    confidence = section.confidence
    if "accuracy" in quality and section.baseline_accuracy:
        return min(1.0, quality["accuracy"] / section.baseline_accuracy)
    if "mae" in quality and section.baseline_mae is not None:
        live = quality["mae"]
        return 1.0 if live <= section.baseline_mae else section.baseline_mae / live
    if confidence and confidence.baseline_mean and np.isfinite(confidence.live_mean):
        return min(1.0, confidence.live_mean / confidence.baseline_mean)
    return None


def _bucket(window_s: float) -> float:
    """A bucket length that gives at most ``MAX_BUCKETS`` points and is a round number."""
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400):
        if window_s / step <= MAX_BUCKETS:
            return float(step)
    return window_s / MAX_BUCKETS


def _current_version(
    registry: ModelRegistry, model: str, live: Mapping[str, Any] | None
) -> str | None:
    if live is not None and live.get("live_version") is not None:
        return str(live["live_version"])
    try:
        return str(registry.resolve(model, "production").version)
    except DnnopsError:
        return None


def _reference(
    registry: ModelRegistry,
    model: str,
    version: str | None,
    *,
    known: Mapping[tuple[str, str], LoadedVersion],
) -> LoadedVersion | None:
    if version is None:
        return None
    found = known.get((model, version))
    if found is not None:
        return found
    try:
        return load_version(registry, registry.resolve(model, version))
    except DnnopsError:
        return None


def _drift_series(
    records: Sequence[PredictionRecord],
    reference: LoadedVersion | None,
    monitor: MonitorConfig,
    *,
    start: float,
    bucket_s: float,
    end: float,
) -> list[float | None]:
    """Share of drifted features per bucket, against the current version's reference."""
    count = max(1, int(np.ceil((end - start) / bucket_s)))
    if reference is None or reference.profile is None:
        return [None] * count
    buckets: list[list[Any]] = [[] for _ in range(count)]
    media = reference.schema.medium is not None
    for record in records:
        monitored = record.descriptors if media else record.inputs
        if record.answered and monitored is not None:
            index = min(count - 1, int((record.ts - start) // bucket_s))
            buckets[index].append(monitored)
    schema = reference.schema
    out: list[float | None] = []
    for inputs in buckets:
        if len(inputs) < MIN_DRIFT_ROWS:
            out.append(None)
            continue
        frame = _monitored(inputs, schema)
        out.append(dataset_drift(reference.profile, frame, monitor.drift).share)
    return out


def _feature_distributions(
    sections: Sequence[VersionSection],
    reference: LoadedVersion | None,
    records: Sequence[PredictionRecord],
    *,
    current: str | None,
) -> list[FeatureDistribution]:
    """Reference and live shares over the reference's bins for the most drifted features."""
    section = next((s for s in sections if s.slis.version == current), None)
    if reference is None or reference.profile is None or section is None:
        return []
    drifts = section.drift.features if section.drift else []
    ranked = sorted(drifts, key=lambda f: -(f.score if np.isfinite(f.score) else 0.0))
    mine = [r for r in records if r.version == current]
    inputs = logged_descriptors(mine) if reference.schema.medium else logged_inputs(mine)
    if not inputs:
        return []
    schema = reference.schema
    frame = _monitored(inputs, schema)
    return [
        shown
        for feature in ranked[:FEATURES_SHOWN]
        if (shown := _distribution(reference.profile, feature, frame)) is not None
    ]


def _distribution(
    profile: Profile, feature: FeatureDrift, frame: pd.DataFrame
) -> FeatureDistribution | None:
    name = feature.feature
    try:
        reference = profile.feature(name)
    except KeyError:
        return None
    if name not in frame.columns:
        return None
    if reference.kind == "numeric" and reference.bin_edges and reference.bin_counts:
        values = np.asarray(frame[name], dtype="float64")
        live = bin_counts(reference.bin_edges, values[np.isfinite(values)])
        edges = reference.bin_edges
        bins = [f"< {edges[0]:.3g}"] + [f"{a:.3g}-{b:.3g}" for a, b in itertools.pairwise(edges)]
        bins.append(f">= {edges[-1]:.3g}")
        ref_counts = np.asarray(reference.bin_counts, dtype="float64")
    elif reference.frequencies:
        bins = sorted(reference.frequencies)
        ref_counts = np.asarray([reference.frequencies[b] for b in bins], dtype="float64")
        observed = frame[name].astype(str).value_counts()
        live = np.asarray([observed.get(b, 0) for b in bins], dtype="float64")
    else:
        return None
    return FeatureDistribution(
        feature=name,
        method=feature.method,
        score=feature.score,
        drifted=feature.drifted,
        bins=bins,
        reference=(ref_counts / max(ref_counts.sum(), 1)).tolist(),
        live=(np.asarray(live, dtype="float64") / max(float(np.sum(live)), 1)).tolist(),
    )


SAMPLES = 8
"""Live inputs the debug view shows of an image or text model."""


def _media_samples(
    records: Sequence[PredictionRecord], reference: LoadedVersion | None
) -> MediaSamples | None:
    """The window's latest logged inputs of an image or text model as a person sees them
    (an image's logged preview, a text), beside its held-out examples."""
    medium = reference.preprocessor.medium if reference is not None else None
    if reference is None or medium is None:
        return None
    live: list[str] = []
    for record in sorted(records, key=lambda r: r.ts, reverse=True):
        cell = record.inputs.get(medium.name) if isinstance(record.inputs, dict) else None
        if isinstance(cell, dict):
            cell = cell.get("preview")  # an image: its preview, when one was logged
        if isinstance(cell, str) and record.answered and not record.shadow:
            live.append(cell)
        if len(live) == SAMPLES:
            break
    examples = reference.embedding.examples if reference.embedding is not None else []
    kind: Literal["image", "text"] = "image" if medium.image is not None else "text"
    return MediaSamples(kind, live, list(examples))


def _versions(registry: ModelRegistry, model: str) -> list[VersionRow]:
    try:
        records = registry.versions(model)
    except DnnopsError:
        return []
    return [
        VersionRow(
            version=r.version,
            created_at=r.created_at,
            status=r.status,
            aliases=r.aliases,
            accuracy=r.metrics.get("accuracy"),
            mae=r.metrics.get("mae"),
            gates_passed=r.gates_passed,
        )
        for r in records
    ]


def _monitored(inputs: list[Any], schema: Schema) -> pd.DataFrame:
    """Logged inputs as the frame drift is measured on: sensitive features (hashed or
    dropped in the log) are left out; an image or text model's are its descriptors."""
    if schema.medium is not None:
        return pd.DataFrame(inputs)
    frame = as_feature_frame(inputs, schema.feature_names, schema.kind == "tensor")
    return frame.drop(columns=list(schema.sensitive_names), errors="ignore")
