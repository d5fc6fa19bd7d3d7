"""Latency: the share of answered requests faster than the objective's threshold."""

from __future__ import annotations

import numpy as np
from prometheus_client.utils import floatToGoString

from dnnops.config import ObjectiveConfig
from dnnops.monitor.judgements.slo import CountsFor
from dnnops.monitor.judgements.slo_kinds.kind import DURATION, Events, Query, SloKind
from dnnops.plugins import SLO_KINDS


def counter(objective: ObjectiveConfig, events: Events) -> CountsFor:
    """Latency judges answered requests, each once however many instances it held (as the
    server's request-duration histogram counts them), and the answered only, so one
    outage is one alert (availability's), not two."""
    from dnnops.monitor.segments.digest import threshold_key
    from dnnops.monitor.segments.rollup import bucket_start

    slower = threshold_key((objective.threshold or 0.0) * 1000)
    buckets = np.array([m.bucket for m in events.history], dtype="float64")
    answered = np.array([m.answered_requests for m in events.history], dtype="int64")
    slow = np.array([m.slower_than.get(slower, 0) for m in events.history], dtype="int64")

    def counts(seconds: float) -> tuple[int, int]:
        within = buckets >= bucket_start(events.now - seconds)
        return int(slow[within].sum()), int(answered[within].sum())

    return counts


def promql(objective: ObjectiveConfig, q: Query) -> tuple[str, str] | None:
    """The answered requests slower than the threshold, from the duration histogram's
    bucket at exactly that bound (a failure burns availability, not latency)."""
    if objective.threshold is None:
        return None
    bound = floatToGoString(objective.threshold)  # type: ignore[no-untyped-call]  # the exact le label the client writes
    count = f"sum by (version) ({q.over}({DURATION}_count{{{q.selector}}}[{q.range}]))"
    bucket = f'{DURATION}_bucket{{{q.selector},le="{bound}"}}'
    fast = f"(sum by (version) ({q.over}({bucket}[{q.range}])) or {count} * 0)"
    return f"({count} - {fast})", count


SLO_KINDS.register(
    SloKind(
        name="latency",
        summary="the share of answered requests faster than threshold",
        counter=counter,
        runbook_page="latency",
        threshold="optional",
        slower_than=True,
        promql=promql,
    )
)
