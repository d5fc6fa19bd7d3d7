"""Label coverage: the share of answered predictions that received a label."""

from __future__ import annotations

import numpy as np

from dnnops.config import ObjectiveConfig
from dnnops.monitor.judgements.slo import CountsFor
from dnnops.monitor.judgements.slo_kinds.kind import Events, SloKind
from dnnops.plugins import SLO_KINDS


def counter(_: ObjectiveConfig, events: Events) -> CountsFor:
    """(unlabelled, answered) among the predictions made in the window."""
    from dnnops.monitor.segments.rollup import bucket_start

    buckets = np.array([m.bucket for m in events.history], dtype="float64")
    answered = np.array([m.predictions for m in events.history], dtype="int64")
    made = events.labeled.ts

    def counts(seconds: float) -> tuple[int, int]:
        start = bucket_start(events.now - seconds)
        total = int(answered[buckets >= start].sum())
        return max(total - int((made >= start).sum()), 0), total

    return counts


SLO_KINDS.register(
    SloKind(
        name="label_coverage",
        summary="the share of answered predictions that receive a label",
        counter=counter,
        runbook_page="labels",
    )
)
