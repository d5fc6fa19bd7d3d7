"""An incident bundle: everything an on-call engineer attaches to a ticket, in one zip.

``dnnops incident NAME --since 1h --out FILE`` writes it: the model's versions with their
lineage and aliases, the traffic split and the monitoring report over the window (SLIs,
drift details, quality on labels, SLO budgets), the rollouts, the alerts, the audit log,
and a sample of logged inputs (as the log keeps them: sensitive features already hashed or
dropped). Each part is a JSON file, and ``README.md`` says what fired and where to look.
"""

from __future__ import annotations

import random
import time
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from dnnops.config import MonitorConfig, SloConfig
from dnnops.monitor.judgements.report_types import Report
from dnnops.monitor.report import build_report
from dnnops.predlog.reader import PREDICTIONS, read_predictions
from dnnops.registry.alerts import AlertStore, StoredAlert
from dnnops.registry.versions import ModelRegistry
from dnnops.rollout.store import RolloutStore

SAMPLE = 100
"""Logged inputs kept in the bundle: enough to reproduce, few enough to read."""
_JSON = orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


@dataclass(frozen=True)
class Bundle:
    path: Path
    parts: list[str]
    predictions: int
    """Predictions of the endpoint in the window."""
    alerts_firing: int


def write_incident(
    registry: ModelRegistry,
    logs_dir: Path,
    name: str,
    *,
    out: Path,
    window_s: float,
    monitor: MonitorConfig,
    slo: SloConfig,
    now: float | None = None,
) -> Bundle:
    """Write the bundle of endpoint ``name`` over the last ``window_s`` seconds to ``out``."""
    moment = time.time() if now is None else now
    report = build_report(registry, logs_dir, window_s, monitor=monitor, slo=slo, now=moment)
    mine = report.of_endpoint(name)
    store = AlertStore(registry.engine)
    alerts = store.list(limit=500, model=name)
    firing = store.list(status="firing", limit=500, model=name)
    parts: dict[str, Any] = {
        "versions.json": [v.to_dict() for v in registry.versions(name)],
        "traffic.json": _traffic(mine),
        "report.json": mine.to_json(),
        "drift.json": {v.slis.version: v.drift for v in mine.versions},
        "rollouts.json": [r.to_dict() for r in RolloutStore(registry.engine).history(name)],
        "alerts.json": [a.to_dict() for a in alerts],
        "audit.json": registry.audit_log(name, limit=500),
        "inputs.json": _sample(logs_dir, name, since=moment - window_s),
        "postmortem.json": {
            "versions": _involved(registry, name, mine, since=moment - window_s),
            "alert_timeline": alert_timeline(alerts, since=moment - window_s),
            "budget_spent": _budget_spent(mine),
        },
    }
    readme = _readme(name, mine, firing, window_s=window_s)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("README.md", readme)
        for part, content in parts.items():
            bundle.writestr(part, orjson.dumps(content, option=_JSON))  # dataclasses too
    partial.replace(out)  # a reader never sees half a bundle
    predictions = sum(v.slis.predictions for v in mine.versions)
    return Bundle(out, ["README.md", *parts], predictions, len(firing))


def _involved(
    registry: ModelRegistry, name: str, report: Report, *, since: float
) -> list[dict[str, Any]]:
    """Each version that served in the window or was rolled out or back in it, with what
    a postmortem asks of it: its training config, its input schema, the fingerprint of
    the data it learned from, its gates and test metrics."""
    wanted = {int(v.slis.version) for v in report.versions if v.slis.version.isdigit()}
    for rollout in RolloutStore(registry.engine).history(name):
        if rollout.updated >= since:
            wanted |= {rollout.candidate, *([rollout.baseline] if rollout.baseline else [])}
    out = []
    for record in registry.versions(name):
        if record.version not in wanted:
            continue
        manifest = registry.manifest(record)
        config, schema = (
            registry.file(record, manifest, name) if manifest.has(name) else None
            for name in ("config.yaml", "schema.json")
        )
        out.append(
            {
                **record.to_dict(),
                "training_config": config.decode() if config is not None else None,
                "schema": orjson.loads(schema) if schema is not None else None,
                "data_fingerprint": record.dataset_sha256,
            }
        )
    return out


def alert_timeline(alerts: list[StoredAlert], *, since: float) -> list[dict[str, Any]]:
    """Each alert's firing and, once it cleared, its resolution, in time order."""
    events = []
    for alert in alerts:
        base = {"key": alert.key, "severity": alert.severity, "kind": alert.kind}
        if alert.status == "pending":
            continue  # never delivered: its hold-down had not passed
        events.append({"at": alert.first_seen, "event": "fired", **base, "summary": alert.summary})
        if alert.status == "resolved":
            events.append({"at": alert.last_seen, "event": "resolved", **base})
    kept = [e for e in events if datetime.fromisoformat(e["at"]).timestamp() >= since]
    return sorted(kept, key=lambda e: datetime.fromisoformat(e["at"]))


def _budget_spent(report: Report) -> list[dict[str, Any]]:
    """Each objective's error budget over its SLO window: the share spent and the events."""
    return [
        {
            "version": section.slis.version,
            "objective": objective.name,
            "kind": objective.kind,
            "target": objective.target,
            "window_s": objective.window_s,
            "events": objective.events,
            "spent": (
                None
                if objective.error_budget_remaining is None
                else 1.0 - objective.error_budget_remaining
            ),
        }
        for section in report.versions
        for objective in section.slo
    ]


def _traffic(report: Report) -> dict[str, Any]:
    return {
        v.slis.version: {
            "share": v.slis.traffic_share,
            "predictions": v.slis.predictions,
            "success_rate": v.slis.success_rate,
        }
        for v in report.versions
    }


def _sample(logs_dir: Path, name: str, *, since: float) -> list[dict[str, Any]]:
    """Up to ``SAMPLE`` answered records of the window, chosen evenly at random."""
    kept: list[dict[str, Any]] = []
    rng = random.Random(0)
    seen = 0
    for record in read_predictions(logs_dir / PREDICTIONS, since=since):
        if record.endpoint != name or record.ts < since or not record.answered:
            continue
        seen += 1  # reservoir sampling: one pass, bounded memory
        slot = seen - 1 if seen <= SAMPLE else rng.randrange(seen)
        if slot < SAMPLE:
            entry = record.to_json()
            if seen <= SAMPLE:
                kept.append(entry)
            else:
                kept[slot] = entry
    return kept


def _readme(name: str, report: Report, firing: list[StoredAlert], *, window_s: float) -> str:
    lines = [
        f"# Incident bundle: {name}",
        "",
        f"Window: the last {window_s:g} s, up to "
        f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(report.generated_at))}.",
        "",
        "## Versions serving",
        "",
    ]
    for section in report.versions:
        s = section.slis
        drift = section.drift.share if section.drift else None
        lines.append(
            f"- v{s.version}: {s.predictions} predictions, {s.traffic_share:.0%} of traffic, "
            f"success {s.success_rate:.2%}, p99 {s.latency_p99_ms:.1f} ms, "
            f"drift {'-' if drift is None else f'{drift:.0%}'}"
        )
    if not report.versions:
        lines.append("- no traffic in the window")
    lines += ["", "## Alerts firing", ""]
    for alert in firing:
        page = alert.details.get("runbook_url")
        shown = f" (runbook: {page})" if page else ""
        lines.append(f"- [{alert.severity}] {alert.summary}{shown}")
    if not firing:
        lines.append("- none")
    lines += [
        "",
        "## Files",
        "",
        "versions.json (lineage, aliases), traffic.json, report.json (the monitoring report),",
        "drift.json, rollouts.json, alerts.json, audit.json, inputs.json (a sample of logged",
        "inputs, sensitive features as the log keeps them), postmortem.json (the versions",
        "involved with their training config, schema and data fingerprint; the alert",
        "timeline; the error budget each objective spent).",
        "",
    ]
    return "\n".join(lines)
