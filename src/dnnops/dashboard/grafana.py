"""A Grafana dashboard (JSON model) for teams that already run Grafana on Prometheus: the
on-call view of ``/dashboard`` drawn from the server's ``/metrics``."""

from __future__ import annotations

from typing import Any

from dnnops.config import ProjectConfig
from dnnops.monitor.judgements.prometheus_rules import error_ratio

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def _panel(
    title: str, targets: list[tuple[str, str]], unit: str, *, x: int, y: int, w: int = 12
) -> dict[str, Any]:
    return {
        "type": "timeseries",
        "title": title,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "expr": expr,
                "legendFormat": legend,
                "datasource": DATASOURCE,
            }
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def grafana_dashboard(project: ProjectConfig) -> dict[str, Any]:
    model = project.name
    m = f'model="{model}"'
    buckets = f"sum by (le, version) (rate(dnnops_request_duration_seconds_bucket{{{m}}}[5m]))"
    panels = [
        _panel(
            "Predictions per second, by version",
            [(f"sum by (version) (rate(dnnops_instances_total{{{m}}}[5m]))", "v{{version}}")],
            "ops",
            x=0,
            y=0,
        ),
        _panel(
            "Latency P50 / P95 / P99, by version",
            [
                (f"histogram_quantile({q}, {buckets})", f"p{int(q * 100)} v{{{{version}}}}")
                for q in (0.5, 0.95, 0.99)
            ],
            "s",
            x=12,
            y=0,
        ),
        _panel(
            "Success rate (non-5xx share)",
            [
                (
                    f'1 - (sum(rate(dnnops_requests_total{{{m},status=~"5.."}}[5m])) or vector(0))'
                    f" / sum(rate(dnnops_requests_total{{{m}}}[5m]))",
                    "success rate",
                )
            ],
            "percentunit",
            x=0,
            y=8,
        ),
        _panel(
            "Queue depth and refusals",
            [
                (f"sum(dnnops_queue_depth{{{m}}})", "queued rows"),
                (f"sum by (reason) (rate(dnnops_rejected_total{{{m}}}[5m]))", "refused {{reason}}"),
            ],
            "short",
            x=12,
            y=8,
        ),
        _panel(
            "Canary weight and routed requests",
            [
                (f'dnnops_rollout_canary_weight{{endpoint="{model}"}}', "canary %"),
                (
                    f"sum by (version, role) (rate(dnnops_routed_requests_total{{{m}}}[5m]))",
                    "{{role}} v{{version}}",
                ),
            ],
            "short",
            x=0,
            y=16,
        ),
        _panel(
            "Batch size (mean rows per batch)",
            [
                (
                    f"sum(rate(dnnops_batch_size_sum{{{m}}}[5m])) / "
                    f"sum(rate(dnnops_batch_size_count{{{m}}}[5m]))",
                    "rows per batch",
                )
            ],
            "short",
            x=12,
            y=16,
        ),
    ]
    burn = [
        (f"({expr}) / {1 - o.target:g}", f"{o.name} burn rate (1h)")
        for o in project.slo.objectives
        if (expr := error_ratio(o, model, "1h")) is not None
    ]
    if burn:
        panels.append(
            _panel("Error budget burn rate (1 = on budget)", burn, "short", x=0, y=24, w=24)
        )
    return {
        "title": f"dnnops: {model}",
        "uid": f"dnnops-{model}"[:40],
        "tags": ["dnnops"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "type": "datasource",
                    "query": "prometheus",
                    "label": "Prometheus",
                }
            ]
        },
        "panels": panels,
    }
