"""Error budgets and multi-window, multi-burn-rate alerts, exactly as the SRE Workbook's
table ("Alerting on SLOs", table 5-8): an alert fires only when both its long and its
short window burn faster than the factor, so it starts fast and stops fast.

    page    14.4x  over 1 h and 5 min   (2% of a 30-day budget in an hour)
    page     6x    over 6 h and 30 min  (5% in six hours)
    ticket   1x    over 3 days and 6 h  (10% in three days)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

Severity = Literal["page", "ticket"]


@dataclass(frozen=True)
class BurnRule:
    severity: Severity
    factor: float
    long_s: float
    short_s: float


WORKBOOK_RULES = (
    BurnRule("page", 14.4, 3600.0, 300.0),
    BurnRule("page", 6.0, 6 * 3600.0, 1800.0),
    BurnRule("ticket", 1.0, 3 * 86400.0, 6 * 3600.0),
)


@dataclass(frozen=True)
class BurnAlert:
    objective: str
    severity: Severity
    factor: float
    long_window_s: float
    short_window_s: float
    long_burn_rate: float
    short_burn_rate: float
    runbook_url: str = ""
    """The page that says what to do (``monitor.runbook_url`` for this alert's kind)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def burn_rate(bad: int, total: int, target: float) -> float:
    """How many times faster than allowed the budget burns: bad share / (1 - target)."""
    if total == 0:
        return 0.0
    return (bad / total) / (1.0 - target)


def budget_remaining(bad: int, total: int, target: float) -> float:
    """Share of the window's error budget left (negative when overspent)."""
    return 1.0 - burn_rate(bad, total, target)


CountsFor = Callable[[float], tuple[int, int]]
"""``(bad, total)`` events in the window of this many seconds that ends now."""


def burn_alerts(
    objective: str,
    target: float,
    counts_for: CountsFor,
    *,
    rules: tuple[BurnRule, ...] = WORKBOOK_RULES,
    min_events: int = 0,
) -> list[BurnAlert]:
    """The rules whose long and short windows both burn at or above their factor, with at
    least ``min_events`` events in the long window (a rate of a handful is no evidence)."""
    fired = []
    for rule in rules:
        bad, total = counts_for(rule.long_s)
        if total < min_events:
            continue
        long_rate = burn_rate(bad, total, target)
        short_rate = burn_rate(*counts_for(rule.short_s), target)
        if long_rate >= rule.factor and short_rate >= rule.factor:
            fired.append(
                BurnAlert(
                    objective,
                    rule.severity,
                    rule.factor,
                    rule.long_s,
                    rule.short_s,
                    long_rate,
                    short_rate,
                )
            )
    return fired
