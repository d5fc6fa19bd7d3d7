"""Accuracy: the share of labelled predictions whose answer was right."""

from __future__ import annotations

import numpy as np

from dnnops.config import ObjectiveConfig
from dnnops.monitor.judgements.slo import CountsFor
from dnnops.monitor.judgements.slo_kinds.kind import Events, SloKind
from dnnops.plugins import SLO_KINDS


def counter(_: ObjectiveConfig, events: Events) -> CountsFor:
    """(wrong, labeled) among the predictions whose label arrived, by prediction time (a
    label outside the classes is wrong; the answered class as the version decides)."""
    from dnnops.evaluate.decision import decide
    from dnnops.monitor.segments.labeled_rows import class_positions
    from dnnops.monitor.segments.rollup import bucket_start

    labeled, classes = events.labeled, events.classes
    scored = labeled.outputs.shape[1] == len(classes) and len(classes) > 0
    judged_ts = labeled.ts if scored else np.array([], dtype="float64")
    truth = class_positions(labeled, classes)
    answered = decide(labeled.outputs, events.decision) if scored else np.array([], "int64")
    wrong = answered != truth if scored else np.array([], dtype=bool)

    def counts(seconds: float) -> tuple[int, int]:
        recent = judged_ts >= bucket_start(events.now - seconds)
        return int(wrong[recent].sum()), int(recent.sum())

    return counts


SLO_KINDS.register(
    SloKind(
        name="accuracy",
        summary="the share of labelled predictions answered right (needs labels)",
        counter=counter,
        runbook_page="accuracy",
    )
)
