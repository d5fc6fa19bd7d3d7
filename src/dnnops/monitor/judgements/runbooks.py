"""Where each alert's runbook lives: every alert and generated Prometheus rule carries a
``runbook_url``, made from ``monitor.runbook_url`` (a template with ``{page}``; by default
the pages in this repository's ``docs/runbooks/``)."""

from __future__ import annotations

from typing import Literal

from dnnops.config import SignalName

ServerTopic = Literal["drift", "rollout", "retraining", "queue", "controller"]
Topic = ServerTopic | SignalName
"""What an alert is about: the server's own topics, and every alerting signal."""
PAGES: dict[Topic, str] = {
    "drift": "drift",
    "rollout": "rollback",
    "retraining": "retraining",
    "queue": "queue-saturation",
    "controller": "control-plane",
    "confidence_drop": "confidence",
    "estimated_accuracy_drop": "estimated-accuracy",
    "attribution_drift": "attribution-drift",
    "label_drift": "label-drift",
    "production_gap": "production-gap",
    "stale_features": "stale-features",
    "invalid_outputs": "invalid-outputs",
    "cost": "cost",
    "client_errors": "client-errors",
}
DEFAULT_TEMPLATE = "docs/runbooks/{page}.md"


def runbook_url(topic: Topic, template: str = DEFAULT_TEMPLATE) -> str:
    return page_url(PAGES[topic], template)


def page_url(page: str, template: str = DEFAULT_TEMPLATE) -> str:
    """The runbook page's address (an SLO kind names its own page: ``SloKind.runbook_page``)."""
    return template.format(page=page)
