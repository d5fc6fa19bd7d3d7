"""Alert deduplication in a real SQLite store, and delivery to a real local webhook."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from dnnops.config import MonitorConfig
from dnnops.monitor.judgements.alerts import (
    MONITOR_KINDS,
    alerts_from_report,
    deliver,
    evaluate_alerts,
)
from dnnops.monitor.judgements.report_types import Report, SegmentCounts, VersionSection
from dnnops.monitor.judgements.sli import VersionSlis
from dnnops.monitor.judgements.slo import BurnAlert
from dnnops.monitor.stats.dataset_drift import DatasetDrift
from dnnops.monitor.stats.drift import FeatureDrift
from dnnops.registry.alerts import AlertStore
from dnnops.registry.db import open_engine

MONITOR = MonitorConfig()


def _report(burning: bool, drifting: bool) -> Report:
    burn = BurnAlert(
        objective="availability",
        severity="page",
        factor=14.4,
        long_window_s=3600.0,
        short_window_s=300.0,
        long_burn_rate=20.0,
        short_burn_rate=30.0,
        runbook_url="https://runbooks.example/availability",
    )
    features = [
        FeatureDrift("a", "psi", 0.5, 0.2, True),
        FeatureDrift("b", "psi", 0.5 if drifting else 0.1, 0.2, drifting),
    ]
    drift = DatasetDrift(features, 0.75, 0.5, drifting, rows=500)
    slis = VersionSlis(
        "m", "m", "3", 500, 10, 0.98, 0.0, 5.0, 1.0, *[1.0] * 6, 0.9, [], 1.0
    )  # fmt: skip
    section = VersionSection(slis, alerts=[burn] if burning else [], drift=drift)
    return Report(0.0, 3600.0, 0.0, 510, SegmentCounts(1, 0), [section])


def test_alerts_are_deduplicated_grouped_delivered_and_resolved(
    tmp_path: Path, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook
    store = AlertStore(open_engine(f"sqlite:///{tmp_path / 'meta.db'}"))
    firing = alerts_from_report(monitor=MONITOR, report=_report(burning=True, drifting=True))
    assert {(a.kind, a.severity) for a in firing} == {("burn_rate", "page"), ("drift", "ticket")}
    drift = next(a for a in firing if a.kind == "drift")
    assert drift.details["runbook_url"] == "docs/runbooks/drift.md"

    outcomes: list[str] = []
    changed = store.record(firing, MONITOR_KINDS)
    assert deliver(changed.fresh, url, counted=outcomes.append) == 0
    assert len(received) == 1 and outcomes == ["delivered"]  # one POST per model and status
    [body] = received
    assert body["version"] == "4" and body["status"] == "firing"  # Alertmanager's shape
    assert body["groupLabels"] == {"model": "m"}
    assert {a["labels"]["alertname"] for a in body["alerts"]} == {
        "DnnopsErrorBudgetBurnPage",
        "DnnopsInputDrift",
    }
    paged = next(a for a in body["alerts"] if a["kind"] == "burn_rate")
    assert paged["labels"]["severity"] == "page" and paged["endsAt"].startswith("0001")
    assert paged["annotations"]["runbook_url"] == "https://runbooks.example/availability"

    again = store.record(
        alerts_from_report(monitor=MONITOR, report=_report(burning=True, drifting=True)),
        MONITOR_KINDS,
    )
    assert not again  # still firing: not delivered twice
    rows = {r.kind: r for r in store.list()}
    assert rows["burn_rate"].count == 2 and rows["burn_rate"].status == "firing"
    worse = [replace(a, summary=a.summary + " (worse)") for a in firing]
    assert not store.record(worse, MONITOR_KINDS)  # the same alerts: nothing to deliver
    assert all(r.summary.endswith("(worse)") for r in store.list())  # never frozen
    store.record(firing, MONITOR_KINDS)
    assert store.list(model="elsewhere") == []
    assert {r.kind for r in store.list(status="firing", model=rows["drift"].model)} == {
        "burn_rate",
        "drift",
    }

    calmer = store.record(
        alerts_from_report(monitor=MONITOR, report=_report(burning=False, drifting=True)),
        MONITOR_KINDS,
    )
    assert calmer.fresh == [] and [r.kind for r in calmer.resolved] == ["burn_rate"]
    deliver(calmer.fresh, url, resolved=calmer.resolved)
    resolved = received[-1]
    assert resolved["status"] == "resolved" and len(resolved["alerts"]) == 1
    [ended] = resolved["alerts"]
    assert ended["labels"]["alertname"] == "DnnopsErrorBudgetBurnPage"
    assert ended["startsAt"] <= ended["endsAt"] and not ended["endsAt"].startswith("0001")
    assert [r.kind for r in store.list(status="resolved")] == ["burn_rate"]
    refired = store.record(
        alerts_from_report(monitor=MONITOR, report=_report(burning=True, drifting=True)),
        MONITOR_KINDS,
    )
    assert [a.kind for a in refired.fresh] == ["burn_rate"]  # firing again after resolving


def test_a_failing_webhook_is_retried_then_counted_never_raised(tmp_path: Path) -> None:
    alerts = alerts_from_report(monitor=MONITOR, report=_report(burning=True, drifting=False))
    waits: list[float] = []
    outcomes: list[str] = []
    nowhere = "http://127.0.0.1:9/nowhere"  # nothing listens on port 9
    assert deliver(alerts, nowhere, counted=outcomes.append, sleep=waits.append) == 1
    assert outcomes == ["failed"] and waits == [0.5, 1.0]  # three tries, backing off
    tries: list[int] = []

    def flaky(url: str, body: dict[str, Any]) -> None:
        tries.append(1)
        if len(tries) < 3:
            raise httpx.ConnectError("refused")

    outcomes.clear()
    assert deliver(alerts, "http://hook", flaky, counted=outcomes.append, sleep=waits.append) == 0
    assert outcomes == ["retried"] and len(tries) == 3


def test_the_alert_evaluation_holds_back_a_rollout_candidates_alerts() -> None:
    """Pure: a report in, what fires and what is held out (no store, no server)."""
    from dataclasses import replace

    calm = _report(burning=False, drifting=True)
    [section] = calm.versions
    candidate = replace(section, slis=replace(section.slis, version="4"))
    report = replace(calm, versions=[section, candidate])
    decided = evaluate_alerts(report, {("m", "4")}, monitor=MONITOR)
    assert [a.key for a in decided.firing] == ["m@3/drift/ticket"]
    assert [a.key for a in decided.held] == ["m@4/drift/ticket"]
    assert evaluate_alerts(report, set(), monitor=MONITOR).held == []
