"""Error budgets and multi-window, multi-burn-rate alerts, as the SRE Workbook's table
("Alerting on SLOs", table 5-8): an alert fires only when both its long and its short
window burn faster than the factor, so it starts fast and stops fast. The rules come from
``slo.burn_rules``: a preset or a team's own table.

    workbook      page    2% of the budget in 1 h (short window 5 min): 14.4x over 30 d
                  page    5% in 6 h (30 min): 6x
                  ticket  10% in 3 days (6 h): 1x
    conservative  page    50% in 6 h (30 min): 60x
                  ticket  50% in 3 days (6 h): 5x

A rule stated as a budget share is turned into a factor for the SLO window in use, so a
7-day window pages on 2% of its own budget in an hour (factor 3.36), as the Workbook's
table means.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from dnnops.config import BurnRuleConfig, SloConfig
from dnnops.vocabulary import AlertSeverity

Severity = AlertSeverity
HOUR, DAY = 3600.0, 86400.0


@dataclass(frozen=True)
class BurnRule:
    severity: Severity
    factor: float
    long_s: float
    short_s: float


def _spent(severity: Severity, budget: float, *, over: float, short: float) -> BurnRuleConfig:
    return BurnRuleConfig(severity=severity, budget=budget, long=over, short=short)


PRESETS: dict[str, tuple[BurnRuleConfig, ...]] = {
    "workbook": (
        _spent("page", 0.02, over=HOUR, short=300.0),
        _spent("page", 0.05, over=6 * HOUR, short=1800.0),
        _spent("ticket", 0.10, over=3 * DAY, short=6 * HOUR),
    ),
    "conservative": (
        _spent("page", 0.5, over=6 * HOUR, short=1800.0),
        _spent("ticket", 0.5, over=3 * DAY, short=6 * HOUR),
    ),
}


def burn_rules(slo: SloConfig) -> tuple[BurnRule, ...]:
    """``slo.burn_rules`` as factors for ``slo.window``."""
    chosen = PRESETS[slo.burn_rules] if isinstance(slo.burn_rules, str) else slo.burn_rules
    return tuple(_as_rule(rule, slo.window) for rule in chosen)


def _as_rule(rule: BurnRuleConfig, window_s: float) -> BurnRule:
    if rule.factor is not None:
        factor = rule.factor
    else:
        assert rule.budget is not None  # the config allows exactly one of the two
        factor = round(rule.budget * window_s / rule.long, 6)  # 14.4, not 14.399999999999999
    return BurnRule(rule.severity, factor, rule.long, rule.short)


def unreachable_rules(slo: SloConfig) -> list[str]:
    """Burn rules that can never fire for an objective: at its target, even every event
    bad burns the budget slower than the rule's factor (a 0.9 accuracy target with the
    workbook's 14.4x page would need 144% of predictions wrong). Said, not refused: a
    ticket rule may still fire."""
    found = []
    for objective in slo.objectives:
        fastest = 1.0 / (1.0 - objective.target)
        for rule in burn_rules(slo):
            if rule.factor > fastest:
                found.append(
                    f"objective {objective.name!r} (target {objective.target:g}): its "
                    f"{rule.severity} rule at {rule.factor:g}x over {rule.long_s:g} s can never "
                    f"fire (all events bad burn {fastest:.3g}x); raise the target or set "
                    "slo.burn_rules with a smaller factor"
                )
    return found


def longest_window_s(rules: tuple[BurnRule, ...]) -> float:
    return max((rule.long_s for rule in rules), default=0.0)


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


@dataclass(frozen=True)
class BurnRate:
    """One rule read for one objective: how fast each of its windows burns the budget,
    and whether that fires it (both at or above the factor, with enough events)."""

    severity: Severity
    factor: float
    long_window_s: float
    short_window_s: float
    long_rate: float
    short_rate: float
    events: int
    """Events judged in the long window."""
    firing: bool


def burn_rates(
    target: float,
    counts_for: CountsFor,
    *,
    rules: tuple[BurnRule, ...],
    min_events: int = 0,
) -> list[BurnRate]:
    """Every rule read over its two windows; with fewer than ``min_events`` events in the
    long window a rule does not fire (a rate of a handful is no evidence)."""
    read = []
    for rule in rules:
        bad, total = counts_for(rule.long_s)
        long_rate = burn_rate(bad, total, target)
        short_rate = burn_rate(*counts_for(rule.short_s), target)
        firing = total >= min_events and min(long_rate, short_rate) >= rule.factor
        read.append(
            BurnRate(
                rule.severity, rule.factor, rule.long_s, rule.short_s,
                long_rate, short_rate, total, firing,
            )
        )  # fmt: skip
    return read


def burn_alerts(
    objective: str,
    target: float,
    counts_for: CountsFor,
    *,
    rules: tuple[BurnRule, ...],
    min_events: int = 0,
) -> list[BurnAlert]:
    """The rules that fire (``burn_rates``), as alerts."""
    return [
        BurnAlert(
            objective,
            rate.severity,
            rate.factor,
            rate.long_window_s,
            rate.short_window_s,
            rate.long_rate,
            rate.short_rate,
        )
        for rate in burn_rates(target, counts_for, rules=rules, min_events=min_events)
        if rate.firing
    ]
