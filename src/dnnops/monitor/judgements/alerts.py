"""Alerts: derived from a monitoring report, deduplicated in the metadata store (the
ledger, ``registry/alerts.py``), grouped per model into one delivery, and sent to a
webhook (POST JSON) and the log.

An alert is identified by its key (model, version, kind, name, severity). While it keeps
firing, later sightings only bump its count and ``last_seen``: it is delivered once. When
its condition clears it is marked resolved; firing again delivers it again.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import httpx

from dnnops.monitor.judgements.report_types import Report
from dnnops.monitor.judgements.runbooks import DEFAULT_TEMPLATE, runbook_url
from dnnops.vocabulary import AlertSeverity

log = logging.getLogger("dnnops.alerts")
Severity = AlertSeverity
AlertKind = Literal["burn_rate", "drift", "rollout", "retraining"]
"""burn_rate and drift: raised and resolved by monitoring; rollout: a rollback's page;
retraining: a background retraining that failed (resolved by the next that does not)."""
MONITOR_KINDS: tuple[AlertKind, ...] = ("burn_rate", "drift")
"""Alerts a monitoring evaluation raises and resolves."""


@dataclass(frozen=True)
class Alert:
    key: str
    model: str
    severity: Severity
    kind: AlertKind
    summary: str
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AlertDecision:
    """What one monitoring evaluation raises, and what it holds back."""

    firing: list[Alert]
    held: list[Alert]
    """A rollout candidate's: its rollout's gates judge it (and page)."""


def evaluate_alerts(
    report: Report, in_rollout: set[tuple[str, str]], *, runbooks: str = DEFAULT_TEMPLATE
) -> AlertDecision:
    """The pure step of a monitoring tick: the report's alerts, those of a (model, version)
    in rollout held back. No I/O: the loop records the firing ones and delivers them."""
    firing: list[Alert] = []
    held: list[Alert] = []
    for alert in alerts_from_report(report, runbooks=runbooks):
        model, _, version = alert.key.split("/", 1)[0].partition("@")  # "model@version/..."
        (held if (model, version) in in_rollout else firing).append(alert)
    return AlertDecision(firing, held)


def alerts_from_report(
    report: Report,
    drift_severity: Severity = "ticket",
    runbooks: str = DEFAULT_TEMPLATE,
) -> list[Alert]:
    """Burn-rate alerts as the report computed them (each with its runbook), plus a drift
    alert per drifted version."""
    out = []
    for version in report.versions:
        slis = version.slis
        where = f"{slis.model}@{slis.version}"
        for burn in version.alerts:
            key = f"{where}/burn/{burn.objective}/{burn.severity}/{burn.factor}"
            summary = (
                f"{where}: SLO {burn.objective} burns its error budget at "
                f"{burn.short_burn_rate:.1f}x (threshold {burn.factor}x)"
            )
            out.append(Alert(key, slis.model, burn.severity, "burn_rate", summary, burn.to_dict()))
        drift = version.drift
        if drift is not None and drift.drifted:
            drifted = [f.feature for f in drift.features if f.drifted]
            summary = f"{where}: input drift in {len(drifted)} feature(s), share {drift.share:.0%}"
            joint = drift.multivariate
            details = {
                "runbook_url": runbook_url("drift", runbooks),
                "share": drift.share,
                "features": drifted[:20],
                "multivariate": joint.to_dict() if joint is not None else None,
            }
            out.append(
                Alert(
                    f"{where}/drift/{drift_severity}",
                    slis.model,
                    drift_severity,
                    "drift",
                    summary,
                    details,
                )
            )
    return out


Post = Callable[[str, dict[str, Any]], None]


def http_post(url: str, payload: dict[str, Any]) -> None:
    httpx.post(url, json=payload, timeout=10).raise_for_status()


def deliver(alerts: Sequence[Alert], webhook_url: str | None, post: Post = http_post) -> int:
    """Log every alert; POST one JSON per model to the webhook. Returns deliveries that failed
    (a failing webhook is logged, never raised: monitoring must keep running)."""
    grouped: dict[str, list[Alert]] = defaultdict(list)
    for alert in alerts:
        log.warning("ALERT %s %s", alert.severity.upper(), alert.summary)
        grouped[alert.model].append(alert)
    failures = 0
    if webhook_url:
        for model, members in grouped.items():
            try:
                post(webhook_url, {"model": model, "alerts": [a.to_dict() for a in members]})
            except (httpx.HTTPError, OSError) as exc:
                failures += 1
                log.error("alert webhook %s failed: %s", webhook_url, exc)
    return failures
