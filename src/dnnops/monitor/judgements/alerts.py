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
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import httpx

from dnnops.config import MonitorConfig, SignalName
from dnnops.monitor.judgements.report_types import Report, SignalReading
from dnnops.monitor.judgements.runbooks import runbook_url
from dnnops.registry.alerts import AlertFacts
from dnnops.vocabulary import AlertSeverity

log = logging.getLogger("dnnops.alerts")
Severity = AlertSeverity
AlertKind = Literal["burn_rate", "drift", "signal", "rollout", "retraining"]
"""burn_rate, drift and signal: raised and resolved by monitoring; rollout: a rollback's
page; retraining: a background retraining that failed (resolved by the next that does not)."""
MONITOR_KINDS: tuple[AlertKind, ...] = ("burn_rate", "drift", "signal")
"""Alerts a monitoring evaluation raises and resolves."""

SIGNAL_DEFAULTS: dict[SignalName, tuple[Severity, float]] = {
    "confidence_drop": ("ticket", 300.0),
    "estimated_accuracy_drop": ("ticket", 300.0),
    "attribution_drift": ("ticket", 300.0),
    "label_drift": ("ticket", 300.0),
    "production_gap": ("ticket", 300.0),
    "stale_features": ("ticket", 300.0),
    "invalid_outputs": ("page", 0.0),
    "cost": ("ticket", 600.0),
    "client_errors": ("page", 60.0),
}
"""Each signal's severity and ``for`` hold-down unless ``monitor.alerts`` says otherwise.
Invalid outputs page at once: the model answers NaN. A flood of refused requests pages
after a minute: a client or a schema changed and every one of its requests fails."""


@dataclass(frozen=True)
class Alert:
    key: str
    model: str
    severity: Severity
    kind: AlertKind
    summary: str
    details: dict[str, Any]
    for_s: float = 0.0
    """Hold-down: it is delivered only once its condition has held this long."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AlertDecision:
    """What one monitoring evaluation raises, and what it holds back."""

    firing: list[Alert]
    held: list[Alert]
    """A rollout candidate's: its rollout's gates judge it (and page)."""


def evaluate_alerts(
    report: Report,
    in_rollout: set[tuple[str, str]],
    *,
    monitor: MonitorConfig,
    firing: Collection[str] = (),
) -> AlertDecision:
    """The pure step of a monitoring tick: the report's alerts, those of a (model, version)
    in rollout held back. ``firing``: the keys firing now (the ledger's), which clear only
    under their signal's clearing level. No I/O: the loop records and delivers them."""
    raised: list[Alert] = []
    held: list[Alert] = []
    for alert in alerts_from_report(report, monitor=monitor, firing=firing):
        model, _, version = alert.key.split("/", 1)[0].partition("@")  # "model@version/..."
        (held if (model, version) in in_rollout else raised).append(alert)
    return AlertDecision(raised, held)


def alerts_from_report(
    report: Report,
    *,
    monitor: MonitorConfig,
    firing: Collection[str] = (),
    drift_severity: Severity = "ticket",
) -> list[Alert]:
    """Burn-rate alerts as the report computed them (each with its runbook), a drift
    alert per drifted version, and an alert per signal past its threshold (or, already
    ``firing``, not yet under its clearing level)."""
    runbooks = monitor.runbook_url
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
        for reading in version.signals:
            key = signal_key(slis.model, slis.version, reading.signal)
            limit = reading.clear if key in firing else reading.threshold
            if reading.value > limit:
                out.append(
                    signal_alert(reading, model=slis.model, version=slis.version, monitor=monitor)
                )
    return out


def signal_key(model: str, version: str, signal: str) -> str:
    return f"{model}@{version}/signal/{signal}"


def signal_severity(signal: SignalName, monitor: MonitorConfig) -> Severity:
    return monitor.alerts.severity.get(signal, SIGNAL_DEFAULTS[signal][0])


def signal_hold_s(signal: SignalName, monitor: MonitorConfig) -> float:
    return monitor.alerts.for_.get(signal, SIGNAL_DEFAULTS[signal][1])


def alert_name(kind: str, severity: str, signal: str | None = None) -> str:
    """The ``alertname`` the generated Prometheus rules use for the same condition, so
    Alertmanager routes and inhibits the server's alerts and Prometheus's alike."""
    if kind == "signal" and signal:
        return "Dnnops" + "".join(word.title() for word in signal.split("_"))
    return {
        "burn_rate": f"DnnopsErrorBudgetBurn{severity.title()}",
        "drift": "DnnopsInputDrift",
        "rollout": "DnnopsRollback",
        "retraining": "DnnopsRetrainingFailed",
    }.get(kind, f"Dnnops{kind.title()}")


SIGNAL_WORDS: dict[SignalName, str] = {
    "confidence_drop": "mean confidence fell {value:.3f} under its test split's",
    "estimated_accuracy_drop": "estimated accuracy fell {value:.1%} under its test split's",
    "attribution_drift": "{value:.0%} of its attributions moved to other features",
    "label_drift": "the arrived labels' classes moved {value:.3f} (Jensen-Shannon) from training's",
    "production_gap": "production quality is {value:.1%} worse than on its test split",
    "stale_features": "a feature has had no new value for {value:.0f} s",
    "invalid_outputs": "{value:.2%} of requests were answered NaN or infinity",
    "cost": "a prediction costs {value:.3g}",
    "client_errors": "{value:.0%} of recent requests were refused as invalid",
}


def signal_alert(
    reading: SignalReading, *, model: str, version: str, monitor: MonitorConfig
) -> Alert:
    """The alert of one signal past its level, its evidence and runbook in its details."""
    signal: SignalName = reading.signal  # type: ignore[assignment]
    key, where = signal_key(model, version, signal), f"{model}@{version}"
    words = SIGNAL_WORDS[signal].format(value=reading.value)
    return Alert(
        key,
        model,
        signal_severity(signal, monitor),
        "signal",
        f"{where}: {words} (threshold {reading.threshold:g})",
        {
            "signal": signal,
            "value": reading.value,
            "threshold": reading.threshold,
            "clear": reading.clear,
            "evidence": reading.evidence,
            "runbook_url": runbook_url(signal, monitor.runbook_url),
        },
        for_s=signal_hold_s(signal, monitor),
    )


class ResolvedAlert(AlertFacts, Protocol):
    """A resolved alert as the ledger returns it (``registry.alerts.StoredAlert``): what
    it stores of any alert, and when it started and ended."""

    @property
    def first_seen(self) -> str: ...
    @property
    def last_seen(self) -> str: ...


Post = Callable[[str, Any], None]
Outcome = Literal["delivered", "retried", "failed"]
ATTEMPTS = 3
"""Tries per delivery; the waits between them double from ``FIRST_WAIT_S``."""
FIRST_WAIT_S = 0.5
NEVER = "0001-01-01T00:00:00Z"
"""Alertmanager's ``endsAt`` of an alert still firing."""


def http_post(url: str, payload: Any) -> None:
    httpx.post(url, json=payload, timeout=10).raise_for_status()


WebhookUrl = str | Mapping[Severity, str] | None
"""``monitor.webhook_url``: one URL for every alert, one per severity, or none."""


def webhook_for(webhook_url: WebhookUrl, severity: Severity) -> str | None:
    if isinstance(webhook_url, Mapping):
        return webhook_url.get(severity)
    return webhook_url


def deliver(
    alerts: Sequence[Alert],
    webhook_url: WebhookUrl,
    post: Post = http_post,
    *,
    resolved: Sequence[ResolvedAlert] = (),
    counted: Callable[[Outcome], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Log every alert; POST one body per model, status and webhook (``monitor.webhook_url``,
    one for all or one per severity) in Alertmanager's webhook shape, so a receiver written
    for Alertmanager reads dnnops's too. A failed POST is tried again ``ATTEMPTS`` times in
    all, waiting longer each time; what still fails is logged and counted, never raised
    (monitoring keeps running). Returns the deliveries that failed."""
    now = iso_utc_now()
    groups: dict[tuple[str | None, str, str], list[dict[str, Any]]] = defaultdict(list)
    for alert in alerts:
        log.warning("ALERT %s %s", alert.severity.upper(), alert.summary)
        url = webhook_for(webhook_url, alert.severity)
        groups[(url, alert.model, "firing")].append(_wire(alert, "firing", starts=now, ends=NEVER))
    for stored in resolved:
        log.warning("RESOLVED %s %s", stored.severity.upper(), stored.summary)
        wire = _wire(stored, "resolved", starts=stored.first_seen, ends=stored.last_seen)
        groups[(webhook_for(webhook_url, stored.severity), stored.model, "resolved")].append(wire)
    failures = 0
    for (url, model, status), members in groups.items():
        if url is None:
            continue
        outcome = post_with_retries(post, url, _body(model, status, members), sleep=sleep)
        if counted is not None:
            counted(outcome)
        failures += outcome == "failed"
    return failures


def post_with_retries(
    post: Post, url: str, body: Any, *, sleep: Callable[[float], None] = time.sleep
) -> Outcome:
    """POST ``body``, tried ``ATTEMPTS`` times in all, waiting longer each time."""
    wait = FIRST_WAIT_S
    for attempt in range(1, ATTEMPTS + 1):
        try:
            post(url, body)
        except (httpx.HTTPError, OSError) as exc:
            log.error("alert delivery to %s failed (try %d of %d): %s", url, attempt, ATTEMPTS, exc)
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
        "labels": wire_labels(alert),
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


def wire_labels(alert: AlertFacts) -> dict[str, str]:
    """Alertmanager's labels of an alert: its name (as the generated rules name the same
    condition), severity, model, and the version and signal where it has them."""
    signal = alert.details.get("signal")
    labels = {
        "alertname": alert_name(alert.kind, alert.severity, signal if signal else None),
        "severity": alert.severity,
        "model": alert.model,
    }
    head = alert.key.split("/", 1)[0]
    if "@" in head:
        labels["version"] = head.partition("@")[2]
    if signal:
        labels["signal"] = str(signal)
    return labels


def iso_utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
