"""The monitoring report: SLIs, drift, quality on labels and SLO budgets for a window.

Reads the prediction and feedback logs and, for each served version, its reference
profile and classes from the registry (verified like every load).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dnnops.config import MonitorConfig, ObjectiveConfig, SloConfig
from dnnops.data.schema import category_key
from dnnops.errors import DnnopsError
from dnnops.monitor.dataset_drift import as_feature_frame, dataset_drift
from dnnops.monitor.drift import DEFAULT_THRESHOLDS, category_shares, jensen_shannon_distance
from dnnops.monitor.sli import Quality, VersionSlis, in_window, quality_on_labels, version_slis
from dnnops.monitor.slo import CountsFor, burn_alerts
from dnnops.predlog.reader import read_records
from dnnops.registry.loader import LoadedVersion, load_version
from dnnops.registry.versions import ModelRegistry

LONGEST_BURN_WINDOW_S = 3 * 86400.0  # the ticket rule's long window


def build_report(
    registry: ModelRegistry,
    logs_dir: Path,
    window_s: float,
    monitor: MonitorConfig,
    slo: SloConfig,
    now: float | None = None,
    loaded: Mapping[tuple[str, str], LoadedVersion] | None = None,
) -> dict[str, Any]:
    """``loaded`` holds versions already in memory (a server's), keyed by (model, version),
    so a report asked of a running server does not re-read and re-verify their artifacts."""
    moment = time.time() if now is None else now
    known = dict(loaded or {})
    oldest = moment - LONGEST_BURN_WINDOW_S  # segments last written before are never read
    history = in_window(
        read_records(logs_dir / "predictions", "predictions", since=oldest),
        moment,
        LONGEST_BURN_WINDOW_S,
    )
    predictions = in_window(history, moment, window_s)
    # a label comes after its prediction: older feedback segments cannot match any record
    feedback = list(read_records(logs_dir / "feedback", "feedback", since=oldest))
    versions = []
    for slis in version_slis(predictions, moment, window_s):
        mine = _of_version(predictions, slis)
        version = known.get((slis.model, slis.version)) or _load(registry, slis)
        section = _version_section(version, slis, mine, feedback, monitor, slo, moment)
        older = _of_version(history, slis)
        section["alerts"] = [
            alert.to_dict()
            for objective in slo.objectives
            for alert in burn_alerts(
                objective.name, objective.target, _counter(objective, older, feedback, moment)
            )
        ]
        versions.append(section)
    busiest = max(versions, key=lambda v: v["slis"]["predictions"], default=None)
    return {
        "generated_at": moment,
        "window_s": window_s,
        "records": len(predictions),
        "versions": versions,
        "drift": busiest["drift"] if busiest else None,
    }


def _of_version(records: Sequence[Mapping[str, Any]], slis: VersionSlis) -> list[Mapping[str, Any]]:
    key = (slis.model, slis.version)
    return [r for r in records if (str(r.get("model")), str(r.get("version"))) == key]


def _version_section(
    loaded: LoadedVersion | None,
    slis: VersionSlis,
    records: Sequence[Mapping[str, Any]],
    feedback: Sequence[Mapping[str, Any]],
    monitor: MonitorConfig,
    slo: SloConfig,
    now: float,
) -> dict[str, Any]:
    section: dict[str, Any] = {"slis": slis.to_dict(), "drift": None, "quality": None}
    if loaded is None:
        section["error"] = f"{slis.model}@{slis.version} is not in the registry"
        return section
    quality = quality_on_labels(records, feedback, loaded.classes)
    section["quality"] = quality.to_dict() if quality else None
    section["drift"] = _drift(loaded, records, monitor)
    section["feature_freshness_s"] = feature_freshness(records, loaded.schema.feature_names, now)
    section["explainability_coverage"] = 0.0  # no explanations are produced yet
    section["prediction_drift"] = _prediction_drift(loaded, records)
    section["confidence"] = confidence_shift(slis, loaded.record.metrics)
    section["baseline_accuracy"] = loaded.record.metrics.get("accuracy")
    section["cost"] = cost_per_prediction(records, monitor.cpu_second_price)
    section["slo"] = [_objective(o, slis, records, quality) for o in slo.objectives]
    return section


def confidence_shift(slis: VersionSlis, metrics: Mapping[str, Any]) -> dict[str, float | None]:
    """Live mean top probability against the version's own on its test split: a model
    that grows unsure (or overconfident) on live data shows it here before labels arrive."""
    baseline = metrics.get("confidence_mean")
    live = slis.confidence_mean
    shift = live - baseline if isinstance(baseline, float) and np.isfinite(live) else None
    return {"live_mean": live, "baseline_mean": baseline, "shift": shift}


def cost_per_prediction(
    records: Sequence[Mapping[str, Any]], cpu_second_price: float
) -> dict[str, float | None]:
    """Model CPU time per prediction (its share of each batch x runner threads) priced at
    ``monitor.cpu_second_price``; the HTTP share is in ``process_cpu_seconds_total``."""
    cpu = [float(r["cpu_ms"]) for r in records if r.get("status") == 200 and "cpu_ms" in r]
    if not cpu:
        return {"cpu_ms_per_prediction": None, "per_1k_predictions": None}
    mean_ms = float(np.mean(cpu))
    return {
        "cpu_ms_per_prediction": mean_ms,
        "per_1k_predictions": mean_ms / 1000 * cpu_second_price * 1000,
    }


def _load(registry: ModelRegistry, slis: VersionSlis) -> LoadedVersion | None:
    if not slis.model or not slis.version.isdigit():
        return None
    try:
        return load_version(registry, registry.resolve(slis.model, slis.version))
    except DnnopsError:
        return None


def _drift(
    loaded: LoadedVersion, records: Sequence[Mapping[str, Any]], monitor: MonitorConfig
) -> dict[str, Any] | None:
    inputs = [
        r["inputs"] for r in records if r.get("status") == 200 and r.get("inputs") is not None
    ]
    if loaded.profile is None or not inputs:
        return None
    tensor = loaded.schema.kind == "tensor"
    frame = as_feature_frame(inputs, loaded.schema.feature_names, tensor)
    return dataset_drift(loaded.profile, frame, monitor.drift).to_dict()


def feature_freshness(
    records: Sequence[Mapping[str, Any]], names: list[str], now: float
) -> dict[str, float | None]:
    """Seconds since the last logged request that carried a value for each feature
    (None: never within the window). Inputs not sampled into the log are not counted."""
    last: dict[str, float] = {}
    for record in records:
        inputs, ts = record.get("inputs"), float(record.get("ts", 0.0))
        if inputs is None:
            continue
        values = (
            inputs.items() if isinstance(inputs, dict) else zip(names, _flat(inputs), strict=False)
        )
        for name, value in values:
            if value is not None and value == value and ts > last.get(name, -1.0):  # NaN != NaN
                last[name] = ts
    return {name: (now - last[name]) if name in last else None for name in names}


def _flat(inputs: Any) -> list[Any]:
    return list(np.asarray(inputs, dtype=object).ravel()) if isinstance(inputs, list) else [inputs]


def _prediction_drift(
    loaded: LoadedVersion, records: Sequence[Mapping[str, Any]]
) -> dict[str, Any] | None:
    """The predicted classes' distribution against the training labels' (Jensen-Shannon)."""
    if loaded.profile is None or not loaded.profile.target:
        return None
    outputs = [
        category_key(r["output"]) for r in records if r.get("status") == 200 and "output" in r
    ]
    if not outputs:
        return None
    names, reference, current = category_shares(
        loaded.profile.target, np.array(outputs, dtype=object)
    )
    score = jensen_shannon_distance(reference, current)
    threshold = DEFAULT_THRESHOLDS["jensen_shannon"]
    return {
        "method": "jensen_shannon",
        "score": score,
        "threshold": threshold,
        "drifted": score >= threshold,
        "classes": names,
        "reference": (reference / max(reference.sum(), 1)).tolist(),
        "current": (current / max(current.sum(), 1)).tolist(),
    }


def _counter(
    objective: ObjectiveConfig,
    records: Sequence[Mapping[str, Any]],
    feedback: Sequence[Mapping[str, Any]],
    now: float,
) -> CountsFor:
    """(bad, total) of ``objective`` in the window of a given length ending ``now``."""
    labels = {str(f.get("prediction_id")): f.get("label") for f in feedback}

    def counts(seconds: float) -> tuple[int, int]:
        window = [r for r in records if float(r.get("ts", 0.0)) >= now - seconds]
        if objective.kind == "success_rate":
            return sum(1 for r in window if r.get("status") != 200), len(window)
        if objective.kind == "latency":
            limit = (objective.threshold or 0.0) * 1000
            bad = sum(
                1 for r in window if r.get("status") != 200 or float(r.get("latency_ms", 0)) > limit
            )
            return bad, len(window)
        judged = [(r, labels[str(r.get("id"))]) for r in window if str(r.get("id")) in labels]
        bad = sum(1 for r, label in judged if category_key(r.get("output")) != category_key(label))
        return bad, len(judged)

    return counts


def _objective(
    objective: ObjectiveConfig,
    slis: VersionSlis,
    records: Sequence[Mapping[str, Any]],
    quality: Quality | None,
) -> dict[str, Any]:
    """Compliance over the window and the share of the error budget left (1 - bad / allowed)."""
    good_share: float | None
    if objective.kind == "latency":
        ok = [float(r.get("latency_ms", 0.0)) for r in records if r.get("status") == 200]
        limit_ms = (objective.threshold or 0.0) * 1000
        total = len(ok) + slis.failed_requests
        good_share = sum(1 for v in ok if v <= limit_ms) / total if total else None
    elif objective.kind == "success_rate":
        good_share = slis.success_rate if (slis.predictions + slis.failed_requests) else None
    else:
        good_share = quality.metrics.get("accuracy") if quality else None
    allowed = 1.0 - objective.target
    remaining = None if good_share is None else 1.0 - (1.0 - good_share) / allowed
    return {
        "name": objective.name,
        "kind": objective.kind,
        "target": objective.target,
        "current": good_share,
        "met": None if good_share is None else good_share >= objective.target,
        "error_budget_remaining": remaining,
    }
