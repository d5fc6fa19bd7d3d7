"""Prometheus alerting rules generated from ``slo.objectives``: the same multi-window,
multi-burn-rate alerts ``dnnops monitor report --alert`` raises, evaluated by a team's own
Prometheus on the server's ``/metrics``.

Events are counted as the report counts them. Success-rate objectives judge each
predicted instance and each request failed on the server's side (5xx, which includes a
model's invalid output), the failures being bad; a client's bad request (4xx) is not
judged at all. Latency objectives judge the answered requests, the ones slower than the
objective's threshold being bad (read from the request-duration histogram, where the
server puts every threshold as an exact bucket bound): a failure burns the availability
budget only, so one outage is one alert. The latency counts agree with the report's
exactly when each request carries one instance: the histogram times requests, the report
instances. Accuracy objectives need labels
that arrive after the fact, so they stay with ``dnnops monitor report`` (a comment in
the output says so).
"""

from __future__ import annotations

from typing import Any

import yaml
from prometheus_client.utils import floatToGoString

from dnnops.config import ObjectiveConfig, ProjectConfig
from dnnops.durations import format_duration
from dnnops.monitor.judgements.runbooks import runbook_url
from dnnops.monitor.judgements.slo import burn_rules

REQUESTS = "dnnops_requests_total"
INSTANCES = "dnnops_instances_total"
DURATION = "dnnops_request_duration_seconds"


def window(seconds: float) -> str:
    """A PromQL range: 300 -> 5m, 3600 -> 1h, 259200 -> 3d."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _events(objective: ObjectiveConfig, model: str, range_: str, *, over: str) -> tuple[str, str]:
    """PromQL for (bad, judged) events of ``objective`` over ``range_``, each summed with
    ``over`` (``rate`` or ``increase``), counted as the report counts them: a judged
    event is a predicted instance or a request failed on the server's side (5xx, an
    invalid output included); a client's bad request (4xx) is not judged at all."""
    selector = f'model="{model}"'
    failed = f'(sum({over}({REQUESTS}{{{selector},status=~"5.."}}[{range_}])) or vector(0))'
    if objective.kind == "success_rate":
        answered = f"(sum({over}({INSTANCES}{{{selector}}}[{range_}])) or vector(0))"
        return failed, f"({answered} + {failed})"
    # latency: the answered requests slower than the threshold (a failure burns availability)
    bound = floatToGoString(objective.threshold)  # type: ignore[no-untyped-call]  # the exact le label the client writes
    answered = f"(sum({over}({DURATION}_count{{{selector}}}[{range_}])) or vector(0))"
    fast = f'(sum({over}({DURATION}_bucket{{{selector},le="{bound}"}}[{range_}])) or vector(0))'
    return f"({answered} - {fast})", answered


def error_ratio(objective: ObjectiveConfig, model: str, range_: str) -> str | None:
    """PromQL for the share of bad events of ``objective`` over ``range_``; None for an
    objective Prometheus cannot judge (accuracy needs labels)."""
    if not _judged_here(objective):
        return None
    bad, judged = _events(objective, model, range_, over="rate")
    return f"{bad} / {judged}"


def event_count(objective: ObjectiveConfig, model: str, range_: str) -> str:
    """PromQL for how many events ``objective`` judged over ``range_``."""
    return _events(objective, model, range_, over="increase")[1]


def _judged_here(objective: ObjectiveConfig) -> bool:
    return objective.kind == "success_rate" or (
        objective.kind == "latency" and objective.threshold is not None
    )


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
                expr = f"({expr}) and on() ({events} >= {project.slo.min_events})"
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
                        "runbook_url": runbook_url(objective.kind, runbooks),
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
        ]
    }


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
