"""Availability: the share of judged requests that did not fail on the server's side."""

from __future__ import annotations

import numpy as np

from dnnops.config import ObjectiveConfig
from dnnops.monitor.judgements.slo import CountsFor
from dnnops.monitor.judgements.slo_kinds.kind import INSTANCES, REQUESTS, Events, Query, SloKind
from dnnops.plugins import SLO_KINDS


def counter(objective: ObjectiveConfig, events: Events) -> CountsFor:
    """Availability judges what ``Stats.success_rate`` judges: the answered and the failed
    on the server's side; a client's bad request burns no budget."""
    from dnnops.monitor.segments.rollup import bucket_start

    buckets = np.array([m.bucket for m in events.history], dtype="float64")
    answered = np.array([m.predictions for m in events.history], dtype="int64")
    failed = np.array([m.server_errors for m in events.history], dtype="int64")

    def counts(seconds: float) -> tuple[int, int]:
        within = buckets >= bucket_start(events.now - seconds)
        return int(failed[within].sum()), int(answered[within].sum() + failed[within].sum())

    return counts


def promql(_: ObjectiveConfig, q: Query) -> tuple[str, str]:
    """A judged event is a predicted instance or a request failed on the server's side (5xx,
    an invalid output included); a client's bad request (4xx) is not judged at all."""

    def per_version(selector: str, metric: str = REQUESTS) -> str:
        return f"sum by (version) ({q.over}({metric}{{{selector}}}[{q.range}]))"

    server_errors = q.selector + ',status=~"5.."'
    zero = f"{per_version(q.selector)} * 0"  # a version with requests but none of a kind
    failed = f"({per_version(server_errors)} or {zero})"
    answered = f"({per_version(q.selector, INSTANCES)} or {zero})"
    return failed, f"({answered} + {failed})"


SLO_KINDS.register(
    SloKind(
        name="success_rate",
        summary="the share of requests that did not fail on the server's side (5xx)",
        counter=counter,
        runbook_page="availability",
        promql=promql,
    )
)
