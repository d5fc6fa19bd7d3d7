"""Prometheus alerting rules generated from ``slo.objectives``: the same multi-window,
multi-burn-rate alerts ``dnnops monitor report --alert`` raises, evaluated by a team's own
Prometheus on the server's ``/metrics``.

Latency objectives read the request-duration histogram at the objective's threshold (the
server adds every threshold as an exact bucket bound); success-rate objectives count 5xx
answers as bad among the requests that were not the client's fault (4xx are left out, as
in the report). Accuracy objectives need labels that arrive after the fact, so they stay
with ``dnnops monitor report`` (a comment in the output says so).
"""

from __future__ import annotations

from typing import Any

import yaml
from prometheus_client.utils import floatToGoString

from dnnops.config import ObjectiveConfig, ProjectConfig
from dnnops.durations import format_duration
from dnnops.monitor.runbooks import runbook_url
from dnnops.monitor.slo import WORKBOOK_RULES

REQUESTS = "dnnops_requests_total"
DURATION = "dnnops_request_duration_seconds"


def window(seconds: float) -> str:
    """A PromQL range: 300 -> 5m, 3600 -> 1h, 259200 -> 3d."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def error_ratio(objective: ObjectiveConfig, model: str, range_: str) -> str | None:
    """PromQL for the share of bad events of ``objective`` over ``range_``."""
    selector = f'model="{model}"'
    if objective.kind == "success_rate":
        bad = f'sum(rate({REQUESTS}{{{selector},status=~"5.."}}[{range_}]))'
        # judged as Stats.success_rate judges: a client's bad request (4xx) is not counted
        total = f'sum(rate({REQUESTS}{{{selector},status!~"4.."}}[{range_}]))'
        return f"({bad} or vector(0)) / {total}"
    if objective.kind == "latency" and objective.threshold is not None:
        bound = floatToGoString(objective.threshold)  # type: ignore[no-untyped-call]  # the exact le label the client writes
        fast = f'sum(rate({DURATION}_bucket{{{selector},le="{bound}"}}[{range_}]))'
        total = f"sum(rate({DURATION}_count{{{selector}}}[{range_}]))"
        return f"1 - ({fast} / {total})"
    return None


def event_count(objective: ObjectiveConfig, model: str, range_: str) -> str:
    """PromQL for how many events ``objective`` judged over ``range_``."""
    selector = f'model="{model}"'
    if objective.kind == "success_rate":
        return f'sum(increase({REQUESTS}{{{selector},status!~"4.."}}[{range_}]))'
    return f"sum(increase({DURATION}_count{{{selector}}}[{range_}]))"


def prometheus_rules(project: ProjectConfig) -> dict[str, Any]:
    model = project.name
    runbooks = project.monitor.runbook_url
    recording: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    ranges = sorted({s for r in WORKBOOK_RULES for s in (r.long_s, r.short_s)})
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
        for rule in WORKBOOK_RULES:
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
    alerts.extend(_operational(project))
    return {
        "groups": [
            {"name": f"dnnops-{model}-slo-recording", "rules": recording},
            {"name": f"dnnops-{model}-alerts", "rules": alerts},
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
            "expr": "increase(dnnops_controller_errors_total[10m]) > 3",
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
