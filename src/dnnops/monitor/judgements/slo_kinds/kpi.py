"""A business KPI: the share of a version's outcomes that were good (a purchase made, no
chargeback), counted by the time of the prediction they followed."""

from __future__ import annotations

import numpy as np

from dnnops.config import ObjectiveConfig
from dnnops.monitor.judgements.slo import CountsFor
from dnnops.monitor.judgements.slo_kinds.kind import Events, SloKind
from dnnops.plugins import SLO_KINDS


def counter(objective: ObjectiveConfig, events: Events) -> CountsFor:
    """(bad, judged) outcomes of the objective's KPI: good is over ``threshold`` (0 by
    default) for a KPI where higher is better, at most it where lower is."""
    from dnnops.monitor.segments.labeled_rows import label_values
    from dnnops.monitor.segments.rollup import bucket_start

    found = events.outcomes.get(objective.kpi or "")
    if found is None:
        return lambda _: (0, 0)
    rows, better = found
    values = label_values(rows)
    judged = ~np.isnan(values)
    ts, values = rows.ts[judged], values[judged]
    if better == "higher":
        good = values > 0 if objective.threshold is None else values >= objective.threshold
    else:
        good = values <= (objective.threshold or 0.0)

    def counts(seconds: float) -> tuple[int, int]:
        recent = ts >= bucket_start(events.now - seconds)
        return int((~good[recent]).sum()), int(recent.sum())

    return counts


SLO_KINDS.register(
    SloKind(
        name="kpi",
        summary="the share of a business KPI's outcomes that were good (monitor.kpis)",
        counter=counter,
        runbook_page="kpi",
        threshold="optional",
    )
)
