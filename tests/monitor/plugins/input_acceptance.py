"""An SLO kind in one module: the share of requests whose input was accepted (not
refused by schema validation or the input policy), read by the report from the log's
minute counts and by Prometheus from the server's request counter."""

import numpy as np

from dnnops.config import ObjectiveConfig
from dnnops.monitor.judgements.slo import CountsFor
from dnnops.monitor.judgements.slo_kinds.kind import REQUESTS, Events, Query, SloKind
from dnnops.monitor.segments.rollup import bucket_start
from dnnops.plugins import SLO_KINDS


def counter(_: ObjectiveConfig, events: Events) -> CountsFor:
    """(refused, requests) in the window: a refusal is a record neither answered nor
    failed on the server's side."""
    history = events.history
    buckets = np.array([m.bucket for m in history], dtype="float64")
    requests = np.array([m.requests for m in history], dtype="int64")
    refused = requests - np.array([m.predictions + m.server_errors for m in history])

    def counts(seconds: float) -> tuple[int, int]:
        within = buckets >= bucket_start(events.now - seconds)
        return int(refused[within].sum()), int(requests[within].sum())

    return counts


def promql(_: ObjectiveConfig, q: Query) -> tuple[str, str]:
    refused = f'(sum({q.over}({REQUESTS}{{{q.selector},status=~"4.."}}[{q.range}])) or vector(0))'
    return refused, f"(sum({q.over}({REQUESTS}{{{q.selector}}}[{q.range}])) or vector(0))"


KIND = SLO_KINDS.register(
    SloKind(
        name="input_acceptance",
        summary="the share of requests whose input was accepted",
        counter=counter,
        runbook_page="input-policy",
        promql=promql,
    )
)
