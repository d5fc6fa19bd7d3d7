"""Label lag: the share of labels that arrive within the objective's threshold."""

from __future__ import annotations

from dnnops.config import ObjectiveConfig
from dnnops.monitor.judgements.slo import CountsFor
from dnnops.monitor.judgements.slo_kinds.kind import Events, SloKind
from dnnops.plugins import SLO_KINDS


def counter(objective: ObjectiveConfig, events: Events) -> CountsFor:
    """(late, labels) among the labels of predictions made in the window."""
    from dnnops.monitor.segments.rollup import bucket_start

    made = events.labeled.ts
    late = events.labeled.label_ts - made > (objective.threshold or 0.0)

    def counts(seconds: float) -> tuple[int, int]:
        within = made >= bucket_start(events.now - seconds)
        return int(late[within].sum()), int(within.sum())

    return counts


SLO_KINDS.register(
    SloKind(
        name="label_lag",
        summary="the share of labels arriving within threshold of their prediction",
        counter=counter,
        runbook_page="labels",
        threshold="required",
        threshold_example="1d",
    )
)
