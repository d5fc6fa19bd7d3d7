"""One version's SLO budgets: each objective's compliance and error budget over the SLO
window, counted as its kind counts (``slo_kinds/``), and the burn-rate alerts that fire."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from dnnops.config import ObjectiveConfig, SloConfig
from dnnops.monitor.judgements.report_types import ObjectiveStatus
from dnnops.monitor.judgements.runbooks import page_url
from dnnops.monitor.judgements.slo import (
    BurnAlert,
    BurnRate,
    burn_rates,
    burn_rules,
)
from dnnops.monitor.judgements.slo_kinds.kind import Events
from dnnops.plugins import SLO_KINDS

if TYPE_CHECKING:
    from dnnops.evaluate.decision import Decision
    from dnnops.monitor.segments.digest import MinuteCounts
    from dnnops.monitor.segments.labeled_rows import LabeledRows


def version_budgets(
    history: list[MinuteCounts],
    labeled: LabeledRows,
    *,
    classes: list[int | str],
    decision: Decision | None,
    slo: SloConfig,
    now: float,
    runbooks: str,
    outcomes: Mapping[str, tuple[LabeledRows, str]] | None = None,
) -> tuple[list[ObjectiveStatus], list[BurnAlert]]:
    """Each objective's compliance and error budget over ``slo.window`` (the SRE Workbook's
    budget period, not the report's window), and its burn-rate alerts."""
    objectives: list[ObjectiveStatus] = []
    alerts: list[BurnAlert] = []
    rules = burn_rules(slo)
    for objective in slo.objectives:
        events = Events(history, labeled, classes, decision, now, outcomes or {})
        counts = SLO_KINDS.get(objective.kind).counter(objective, events)
        bad, total = counts(slo.window)
        rates = burn_rates(objective.target, counts, rules=rules, min_events=slo.min_events)
        objectives.append(_objective(objective, bad, total, window_s=slo.window, rates=rates))
        fired = [rate for rate in rates if rate.firing]
        if fired:  # one alert per condition: the most urgent rule that fires
            worst = max(fired, key=lambda r: (r.severity == "page", r.factor))
            alerts.append(
                BurnAlert(
                    objective.name,
                    worst.severity,
                    worst.factor,
                    worst.long_window_s,
                    worst.short_window_s,
                    worst.long_rate,
                    worst.short_rate,
                    runbook_url=page_url(SLO_KINDS.get(objective.kind).runbook_page, runbooks),
                )
            )
    return objectives, alerts


def _objective(
    objective: ObjectiveConfig, bad: int, total: int, *, window_s: float, rates: list[BurnRate]
) -> ObjectiveStatus:
    """Compliance over the SLO window and the share of its error budget left
    (1 - bad / allowed); None while nothing was judged in it."""
    good_share = 1.0 - bad / total if total else None
    allowed = 1.0 - objective.target
    remaining = None if good_share is None else 1.0 - (1.0 - good_share) / allowed
    return ObjectiveStatus(
        name=objective.name,
        kind=objective.kind,
        target=objective.target,
        window_s=window_s,
        current=good_share,
        met=None if good_share is None else good_share >= objective.target,
        error_budget_remaining=remaining,
        events=total,
        burn_rates=rates,
    )
