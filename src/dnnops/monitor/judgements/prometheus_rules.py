"""Prometheus alerting rules generated from ``slo.objectives``: the same multi-window,
multi-burn-rate alerts ``dnnops monitor report --alert`` raises, evaluated by a team's own
Prometheus on the server's ``/metrics``.

Events are counted as the report counts them: each SLO kind that Prometheus can judge
from the server's own metrics carries its PromQL (``SloKind.promql``, beside its
counter in ``slo_kinds/``). Latency counts requests on both sides: the histogram times
each request once, and the report counts a request by its first instance (``part`` 0). Kinds
that need labels (accuracy, label coverage and lag) stay with ``dnnops monitor report``
(a comment in the output says so).
"""

from __future__ import annotations

from typing import Any

import yaml

from dnnops.config import ObjectiveConfig, ProjectConfig
from dnnops.durations import format_duration
from dnnops.monitor.judgements.alerts import alert_name, signal_hold_s, signal_severity
from dnnops.monitor.judgements.runbooks import page_url, runbook_url
from dnnops.monitor.judgements.signal_readings import READERS
from dnnops.monitor.judgements.slo import burn_rules
from dnnops.monitor.judgements.slo_kinds.kind import INSTANCES, REQUESTS, Query
from dnnops.plugins import SLO_KINDS


def window(seconds: float) -> str:
    """A PromQL range: 300 -> 5m, 3600 -> 1h, 259200 -> 3d."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _events(
    objective: ObjectiveConfig, model: str, range_: str, *, over: str
) -> tuple[str, str] | None:
    """PromQL for (bad, judged) events of ``objective`` over ``range_``, each summed with
    ``over`` (``rate`` or ``increase``), counted as the report counts them (the kind's own
    ``promql``); None for an objective Prometheus cannot judge (accuracy needs labels)."""
    promql = SLO_KINDS.get(objective.kind).promql
    return None if promql is None else promql(objective, Query(f'model="{model}"', range_, over))


def error_ratio(objective: ObjectiveConfig, model: str, range_: str) -> str | None:
    """PromQL for the share of bad events of ``objective`` over ``range_``; None for an
    objective Prometheus cannot judge (accuracy needs labels)."""
    events = _events(objective, model, range_, over="rate")
    return None if events is None else f"{events[0]} / {events[1]}"


def event_count(objective: ObjectiveConfig, model: str, range_: str) -> str:
    """PromQL for how many events ``objective`` judged over ``range_``."""
    events = _events(objective, model, range_, over="increase")
    assert events is not None, "asked only of objectives with an error ratio"
    return events[1]


def prometheus_rules(project: ProjectConfig) -> dict[str, Any]:
    model = project.name
    runbooks = project.monitor.runbook_url
    recording: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    rules = burn_rules(project.slo)
    ranges = sorted({s for r in rules for s in (r.long_s, r.short_s)})
    for objective in project.slo.objectives:
        if error_ratio(objective, model, "5m") is None:
            continue
        labels = {"model": model, "objective": objective.name}
        kind = SLO_KINDS.get(objective.kind)
        for seconds in ranges:
            recording.append(
                {
                    "record": f"dnnops:slo_error_ratio:rate{window(seconds)}",
                    "expr": error_ratio(objective, model, window(seconds)),
                    "labels": labels,
                }
            )
        budget = 1.0 - objective.target
        for rule in rules:
            long_, short = window(rule.long_s), window(rule.short_s)
            threshold = f"{rule.factor} * {budget:g}"
            series = f'{{model="{model}",objective="{objective.name}"}}'
            expr = (
                f"dnnops:slo_error_ratio:rate{long_}{series} > ({threshold}) and "
                f"dnnops:slo_error_ratio:rate{short}{series} > ({threshold})"
            )
            if project.slo.min_events:  # as the report: no page on a handful of requests
                events = event_count(objective, model, long_)
                expr = f"({expr}) and on(version) ({events} >= {project.slo.min_events})"
            alerts.append(
                {
                    "alert": f"DnnopsErrorBudgetBurn{rule.severity.title()}",
                    "expr": expr,
                    "labels": {**labels, "severity": rule.severity, "factor": str(rule.factor)},
                    "annotations": {
                        "summary": (
                            f"{model}: SLO {objective.name} burns its error budget at "
                            f"{rule.factor}x over {long_} and {short}"
                        ),
                        "description": (
                            f"target {objective.target:.3%} over "
                            f"{format_duration(project.slo.window)}; see dnnops monitor report"
                        ),
                        "runbook_url": page_url(kind.runbook_page, runbooks),
                    },
                }
            )
    # The burn alerts sit in the recording rules' group, after them: Prometheus evaluates
    # a group's rules in order, but groups independently, so an alert in another group
    # could read a ratio one evaluation old (promtool, under load, paged on a 30-minute
    # window that had just recovered).
    return {
        "groups": [
            {"name": f"dnnops-{model}-slo", "rules": recording + alerts},
            {"name": f"dnnops-{model}-server", "rules": _operational(project)},
            {"name": f"dnnops-{model}-signals", "rules": signal_rules(project)},
        ]
    }


def signal_rules(project: ProjectConfig) -> list[dict[str, Any]]:
    """An alert per signal of ``monitor.alerts`` on ``dnnops_signal_value``, which the
    server's evaluation sets to the very number the report judges; client errors straight
    from the request counters. Each has the report's ``for`` hold-down and its hysteresis: a
    firing alert stays while its signal is over the clearing level (``ALERTS``). Input
    drift reads ``dnnops_drift_detected``, the report's verdict."""
    monitor, model = project.monitor, project.name
    rules: list[dict[str, Any]] = [
        {
            "alert": alert_name("drift", "ticket"),
            "expr": f'dnnops_drift_detected{{model="{model}"}} > 0',
            "labels": {"model": model, "severity": "ticket"},
            "annotations": {
                "summary": f"{model}: input drift (see dnnops monitor report)",
                "runbook_url": runbook_url("drift", monitor.runbook_url),
            },
        }
    ]
    for signal, (threshold_of, _) in READERS.items():
        threshold = threshold_of(monitor)
        if threshold is None:
            continue
        name = alert_name("signal", "", signal)
        clear = threshold * monitor.alerts.clear
        if signal == "client_errors":
            range_ = window(monitor.alerts.client_errors_window)
            refused, judged = (f'dnnops:client_errors_{part}:increase{range_}{{model="{model}"}}'
                               for part in ("refused", "judged"))  # fmt: skip
            rules.extend(client_error_records(model, range_))
            enough = f"{judged} >= {monitor.alerts.min_predictions}"
            past = f"({refused} / {judged} > {threshold:g} and {enough})"
            held = f"({refused} / {judged} > {clear:g} and {enough})"
            on = "version"
        else:
            value = f'dnnops_signal_value{{model="{model}",signal="{signal}"}}'
            past, held, on = f"{value} > {threshold:g}", f"{value} > {clear:g}", "endpoint, version"
        firing = f'ALERTS{{alertname="{name}",alertstate="firing",model="{model}"}}'
        rule: dict[str, Any] = {
            "alert": name,
            "expr": f"{past} or ({held} and on({on}) {firing})",
        }
        hold = signal_hold_s(signal, monitor)
        if hold:
            rule["for"] = window(hold)
        rule["labels"] = {
            "model": model,
            "signal": signal,
            "severity": signal_severity(signal, monitor),
        }
        rule["annotations"] = {
            "summary": f"{model}: {signal} past {threshold:g} (clears under {clear:g})",
            "runbook_url": runbook_url(signal, monitor.runbook_url),
        }
        rules.append(rule)
    return rules


def client_error_records(model: str, range_: str) -> list[dict[str, Any]]:
    """Recording rules for requests refused as invalid (400, 413, 422) and requests judged
    (those, answered instances and server errors) per version over ``range_``, counted as
    the report counts them. A version without one kind of event reads it as 0."""

    def per_version(metric: str, status: str = "") -> str:
        selector = f'model="{model}"' + (f',status=~"{status}"' if status else "")
        return f"sum by (version) (increase({metric}{{{selector}}}[{range_}]))"

    zero = f"{per_version(REQUESTS)} * 0"
    refused = f"({per_version(REQUESTS, '400|413|422')} or {zero})"
    answered = f"({per_version(INSTANCES)} or {zero})"
    failed = f"({per_version(REQUESTS, '5..')} or {zero})"
    return [
        {
            "record": f"dnnops:client_errors_refused:increase{range_}",
            "expr": refused,
            "labels": {"model": model},
        },
        {
            "record": f"dnnops:client_errors_judged:increase{range_}",
            "expr": f"{refused} + {answered} + {failed}",
            "labels": {"model": model},
        },
    ]


def _operational(project: ProjectConfig) -> list[dict[str, Any]]:
    """Alerts on the server itself: a queue close to its limit, a failing controller."""
    model = project.name
    limit = project.serve.queue_limit
    return [
        {
            "alert": "DnnopsQueueNearLimit",
            "expr": f'max(dnnops_queue_depth{{model="{model}"}}) > {0.8 * limit:g}',
            "for": "2m",
            "labels": {"model": model, "severity": "ticket"},
            "annotations": {
                "summary": f"{model}: the batch queue holds over 80% of serve.queue_limit "
                f"({limit}); requests will soon be answered 503",
                "runbook_url": runbook_url("queue", project.monitor.runbook_url),
            },
        },
        {
            "alert": "DnnopsRolloutControllerFailing",
            "expr": 'increase(dnnops_controller_errors_total{loop="rollout"}[10m]) > 3',
            "labels": {"model": model, "severity": "ticket"},
            "annotations": {
                "summary": "the rollout controller keeps failing; see the server log",
                "runbook_url": runbook_url("controller", project.monitor.runbook_url),
            },
        },
    ]


def render_rules(project: ProjectConfig) -> str:
    skipped = [o.name for o in project.slo.objectives if error_ratio(o, "m", "5m") is None]
    note = ""
    if skipped:
        note = (
            f"# Not here: {', '.join(skipped)} (accuracy needs late labels: "
            "dnnops monitor report --alert evaluates it).\n"
        )
    header = f"# Generated by dnnops export prometheus-rules for {project.name}.\n"
    return header + note + yaml.safe_dump(prometheus_rules(project), sort_keys=False, width=120)
