"""What an SLO kind is: how an objective of that kind counts its bad and judged events in
a window (from the log's minute counts or from the labelled predictions), whether it needs
a threshold, its runbook page, and, when Prometheus can judge it from the server's own
metrics, the PromQL for the same counts. The built-ins are the modules beside this one; a
new kind is one module that builds a ``SloKind`` and calls ``SLO_KINDS.register``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from dnnops.config import ObjectiveConfig
from dnnops.monitor.judgements.slo import CountsFor

if TYPE_CHECKING:  # config validation looks kinds up: it must not pay for pandas
    from dnnops.evaluate.decision import Decision
    from dnnops.monitor.segments.digest import MinuteCounts
    from dnnops.monitor.segments.labeled_rows import LabeledRows

REQUESTS = "dnnops_requests_total"
INSTANCES = "dnnops_instances_total"
DURATION = "dnnops_request_duration_seconds"
"""The server's metrics (``serve/metrics.py``) that the kinds' PromQL reads."""


@dataclass(frozen=True)
class Events:
    """What one version's objectives are counted from."""

    history: list[MinuteCounts]
    """Per-minute counts of the version's traffic over the SLO window."""
    labeled: LabeledRows
    """The version's predictions that received a label."""
    classes: list[int | str]
    decision: Decision | None
    now: float
    outcomes: Mapping[str, tuple[LabeledRows, str]] = field(default_factory=dict)
    """Per KPI (``monitor.kpis``), the version's predictions that received an outcome, and
    which way is better (``higher`` or ``lower``)."""


@dataclass(frozen=True)
class Query:
    """Which series and how: a label selector, a PromQL range, ``rate`` or ``increase``."""

    selector: str
    range: str
    over: str


PromQL = Callable[[ObjectiveConfig, Query], tuple[str, str] | None]
"""(objective, query) -> PromQL for (bad, judged) events, each summed ``by (version)`` as
the report judges each version; None when this objective cannot be judged from the
server's metrics."""


@dataclass(frozen=True)
class SloKind:
    name: str
    summary: str
    """One line for the docs and for the error that lists the kinds."""
    counter: Callable[[ObjectiveConfig, Events], CountsFor]
    runbook_page: str
    threshold: Literal["unused", "optional", "required"] = "unused"
    threshold_example: str = ""
    """Shown when a required threshold is missing (``1d``)."""
    slower_than: bool = False
    """The digest counts the requests slower than the objective's threshold for it."""
    promql: PromQL | None = None
