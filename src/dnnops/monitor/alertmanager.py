"""Delivery to a real Alertmanager (``monitor.alertmanager_url``) through its v2 API, as
Prometheus delivers: every evaluation posts every alert still firing, with an ``endsAt`` a
few evaluations ahead (so the alerts of a server that died resolve on their own), and each
newly resolved alert once, its ``endsAt`` the time it cleared. Alertmanager groups, routes
by severity, inhibits and silences them (``dnnops export alertmanager``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from dnnops.monitor.judgements.alerts import (
    Outcome,
    Post,
    http_post,
    post_with_retries,
    wire_labels,
)
from dnnops.registry.alerts import StoredAlert
from dnnops.registry.clock import iso_utc

RESEND_EVALUATIONS = 4
"""A firing alert is posted as ending this many evaluations ahead, as Prometheus does."""
MIN_EXPIRY_S = 240.0
"""...and never less than this ahead (Prometheus: four times its one-minute resend delay)."""
API = "/api/v2/alerts"


def postable_alerts(
    firing: Sequence[StoredAlert],
    resolved: Sequence[StoredAlert],
    *,
    now: datetime,
    evaluate_every_s: float,
) -> list[dict[str, Any]]:
    """Alertmanager's ``postableAlerts``: labels (as the generated rules label the same
    condition), annotations (summary, runbook and the evidence as JSON), start and end."""
    ahead = max(RESEND_EVALUATIONS * evaluate_every_s, MIN_EXPIRY_S)
    expires = iso_utc(now + timedelta(seconds=ahead))
    return [_postable(a, ends=expires) for a in firing] + [
        _postable(a, ends=a.last_seen) for a in resolved
    ]


def _postable(alert: StoredAlert, *, ends: str) -> dict[str, Any]:
    details = alert.details
    evidence = details.get("evidence", details)
    return {
        "labels": wire_labels(alert),
        "annotations": {
            "summary": alert.summary,
            "runbook_url": str(details.get("runbook_url", "")),
            "evidence": json.dumps(evidence, sort_keys=True, default=str)[:4000],
        },
        "startsAt": alert.first_seen,
        "endsAt": ends,
    }


def post_to_alertmanager(
    url: str,
    alerts: list[dict[str, Any]],
    *,
    post: Post = http_post,
    counted: Callable[[Outcome], None] | None = None,
) -> Outcome | None:
    """POST the batch to ``url``'s v2 API (tried three times, counted, never raised);
    None when there is nothing to post."""
    if not alerts:
        return None
    outcome = post_with_retries(post, url.rstrip("/") + API, alerts)
    if counted is not None:
        counted(outcome)
    return outcome
