"""Where each alert's runbook lives: every alert and generated Prometheus rule carries a
``runbook_url``, made from ``monitor.runbook_url`` (a template with ``{page}``; by default
the pages in this repository's ``docs/runbooks/``)."""

from __future__ import annotations

from typing import Literal

Topic = Literal[
    "latency",
    "success_rate",
    "accuracy",
    "label_coverage",
    "label_lag",
    "drift",
    "rollout",
    "invalid_output",
    "retraining",
    "queue",
    "controller",
]
PAGES: dict[Topic, str] = {
    "latency": "latency",
    "success_rate": "availability",
    "accuracy": "accuracy",
    "label_coverage": "labels",
    "label_lag": "labels",
    "drift": "drift",
    "rollout": "rollback",
    "invalid_output": "invalid-outputs",
    "retraining": "retraining",
    "queue": "queue-saturation",
    "controller": "control-plane",
}
DEFAULT_TEMPLATE = "docs/runbooks/{page}.md"


def runbook_url(topic: Topic, template: str = DEFAULT_TEMPLATE) -> str:
    return template.format(page=PAGES[topic])
