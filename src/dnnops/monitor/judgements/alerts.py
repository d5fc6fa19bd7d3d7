"""Alerts: derived from a monitoring report, deduplicated in the metadata store (the
ledger, ``registry/alerts.py``), grouped per model into one delivery, and sent to a
webhook (POST JSON) and the log.

An alert is identified by its key (model, version, kind, name, severity). While it keeps
firing, later sightings only bump its count and ``last_seen``: it is delivered once. When
its condition clears it is marked resolved; firing again delivers it again.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import httpx

from dnnops.monitor.judgements.report_types import Report
from dnnops.monitor.judgements.runbooks import DEFAULT_TEMPLATE, runbook_url
from dnnops.registry.alerts import AlertFacts
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


class ResolvedAlert(AlertFacts, Protocol):
    """A resolved alert as the ledger returns it (``registry.alerts.StoredAlert``): what
    it stores of any alert, and when it started and ended."""

    @property
    def first_seen(self) -> str: ...
    @property
    def last_seen(self) -> str: ...


Post = Callable[[str, dict[str, Any]], None]
Outcome = Literal["delivered", "retried", "failed"]
ATTEMPTS = 3
"""Tries per delivery; the waits between them double from ``FIRST_WAIT_S``."""
FIRST_WAIT_S = 0.5
NEVER = "0001-01-01T00:00:00Z"
"""Alertmanager's ``endsAt`` of an alert still firing."""


def http_post(url: str, payload: dict[str, Any]) -> None:
    httpx.post(url, json=payload, timeout=10).raise_for_status()


def deliver(
    alerts: Sequence[Alert],
    webhook_url: str | None,
    post: Post = http_post,
    *,
    resolved: Sequence[ResolvedAlert] = (),
    counted: Callable[[Outcome], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Log every alert; POST one body per model and status (firing, resolved) to the
    webhook, in Alertmanager's webhook shape, so a receiver written for Alertmanager reads
    dnnops's too. A failed POST is tried again ``ATTEMPTS`` times in all, waiting longer
    each time; what still fails is logged and counted, never raised (monitoring keeps
    running). Returns the deliveries that failed."""
    now = iso_utc_now()
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for alert in alerts:
        log.warning("ALERT %s %s", alert.severity.upper(), alert.summary)
        groups[(alert.model, "firing")].append(_wire(alert, "firing", starts=now, ends=NEVER))
    for stored in resolved:
        log.warning("RESOLVED %s %s", stored.severity.upper(), stored.summary)
        wire = _wire(stored, "resolved", starts=stored.first_seen, ends=stored.last_seen)
        groups[(stored.model, "resolved")].append(wire)
    failures = 0
    if webhook_url:
        for (model, status), members in groups.items():
            body = _body(model, status, members)
            outcome = _post_with_retries(post, webhook_url, body, sleep=sleep)
            if counted is not None:
                counted(outcome)
            failures += outcome == "failed"
    return failures


def _post_with_retries(
    post: Post, url: str, body: dict[str, Any], *, sleep: Callable[[float], None]
) -> Outcome:
    wait = FIRST_WAIT_S
    for attempt in range(1, ATTEMPTS + 1):
        try:
            post(url, body)
        except (httpx.HTTPError, OSError) as exc:
            log.error("alert webhook %s failed (try %d of %d): %s", url, attempt, ATTEMPTS, exc)
            if attempt < ATTEMPTS:
                sleep(wait)
                wait *= 2
            continue
        return "delivered" if attempt == 1 else "retried"
    return "failed"


def _body(model: str, status: str, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    """Alertmanager's webhook payload (version 4) for one model's alerts of one status."""
    return {
        "version": "4",
        "receiver": "dnnops",
        "status": status,
        "groupKey": f'{{}}:{{model="{model}"}}',
        "groupLabels": {"model": model},
        "commonLabels": {"model": model},
        "commonAnnotations": {},
        "externalURL": "",
        "truncatedAlerts": 0,
        "model": model,
        "alerts": alerts,
    }


def _wire(alert: Alert | ResolvedAlert, status: str, *, starts: str, ends: str) -> dict[str, Any]:
    """One alert as Alertmanager sends it (labels, annotations, times, fingerprint), with
    dnnops's own fields beside (``kind``, ``key``, ``details``: the evidence)."""
    details = alert.details
    return {
        "status": status,
        "labels": {
            "alertname": f"dnnops_{alert.kind}",
            "severity": alert.severity,
            "model": alert.model,
        },
        "annotations": {
            "summary": alert.summary,
            "runbook_url": str(details.get("runbook_url", "")),
        },
        "startsAt": starts,
        "endsAt": ends,
        "generatorURL": "",
        "fingerprint": hashlib.sha256(alert.key.encode()).hexdigest()[:16],
        "key": alert.key,
        "kind": alert.kind,
        "severity": alert.severity,
        "summary": alert.summary,
        "details": details,
    }


def iso_utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
