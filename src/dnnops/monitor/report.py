"""The monitoring report: SLIs, drift, quality on labels and SLO budgets for a window.

Reads the prediction and feedback logs and, for each served version, its reference
profile and classes from the registry (verified like every load).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dnnops.config import MonitorConfig, ObjectiveConfig, SloConfig
from dnnops.errors import DnnopsError
from dnnops.monitor.dataset_drift import as_feature_frame, dataset_drift
from dnnops.monitor.sli import Quality, VersionSlis, in_window, quality_on_labels, version_slis
from dnnops.predlog.reader import read_records
from dnnops.registry.loader import LoadedVersion, load_version
from dnnops.registry.versions import ModelRegistry


def build_report(
    registry: ModelRegistry,
    logs_dir: Path,
    window_s: float,
    monitor: MonitorConfig,
    slo: SloConfig,
    now: float | None = None,
) -> dict[str, Any]:
    moment = time.time() if now is None else now
    predictions = in_window(read_records(logs_dir / "predictions", "predictions"), moment, window_s)
    feedback = list(read_records(logs_dir / "feedback", "feedback"))
    versions = []
    for slis in version_slis(predictions, moment, window_s):
        mine = [
            r
            for r in predictions
            if (str(r.get("model")), str(r.get("version"))) == (slis.model, slis.version)
        ]
        versions.append(_version_section(registry, slis, mine, feedback, monitor, slo))
    busiest = max(versions, key=lambda v: v["slis"]["predictions"], default=None)
    return {
        "generated_at": moment,
        "window_s": window_s,
        "records": len(predictions),
        "versions": versions,
        "drift": busiest["drift"] if busiest else None,
    }


def _version_section(
    registry: ModelRegistry,
    slis: VersionSlis,
    records: Sequence[Mapping[str, Any]],
    feedback: Sequence[Mapping[str, Any]],
    monitor: MonitorConfig,
    slo: SloConfig,
) -> dict[str, Any]:
    section: dict[str, Any] = {"slis": slis.to_dict(), "drift": None, "quality": None}
    loaded = _load(registry, slis)
    if loaded is None:
        section["error"] = f"{slis.model}@{slis.version} is not in the registry"
        return section
    quality = quality_on_labels(records, feedback, loaded.classes)
    section["quality"] = quality.to_dict() if quality else None
    section["drift"] = _drift(loaded, records, monitor)
    section["slo"] = [_objective(o, slis, records, quality) for o in slo.objectives]
    return section


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
