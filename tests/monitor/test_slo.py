"""Each burn-rate rule of the SRE Workbook's table, one at a time; the conservative preset
and a team's own rules from dnnops.yaml."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dnnops.config import MonitorConfig, SloConfig
from dnnops.errors import ConfigError
from dnnops.monitor.judgements.slo import (
    budget_remaining,
    burn_alerts,
    burn_rate,
    burn_rules,
    unreachable_rules,
)

WORKBOOK_RULES = burn_rules(SloConfig())

TARGET = 0.999  # budget: 0.1% bad


def _windows(bad_share: dict[float, float], total: int = 100_000):  # type: ignore[no-untyped-def]
    """counts_for with a chosen bad share per window length (default: none bad)."""
    return lambda seconds: (round(bad_share.get(seconds, 0.0) * total), total)


def test_burn_rate_and_budget() -> None:
    assert burn_rate(1, 1000, TARGET) == pytest.approx(1.0)
    assert burn_rate(0, 0, TARGET) == 0.0
    assert budget_remaining(5, 10_000, TARGET) == pytest.approx(0.5)
    assert budget_remaining(3, 1000, TARGET) == pytest.approx(-2.0)


def test_fast_burn_pages_only_when_both_windows_burn() -> None:
    both = burn_alerts(
        "availability", TARGET, _windows({3600.0: 0.0145, 300.0: 0.02}), rules=WORKBOOK_RULES
    )
    assert [(a.severity, a.factor) for a in both] == [("page", 14.4)]
    long_only = burn_alerts(
        "availability", TARGET, _windows({3600.0: 0.0145, 300.0: 0.0}), rules=WORKBOOK_RULES
    )
    assert long_only == []  # the incident is over: the short window has recovered
    short_only = burn_alerts(
        "availability", TARGET, _windows({3600.0: 0.001, 300.0: 0.05}), rules=WORKBOOK_RULES
    )
    assert short_only == []  # a blip: not enough budget burned yet


def test_slow_burn_pages_at_six_times() -> None:
    fired = burn_alerts(
        "latency", TARGET, _windows({21600.0: 0.0061, 1800.0: 0.007}), rules=WORKBOOK_RULES
    )
    assert [(a.severity, a.factor) for a in fired] == [("page", 6.0)]


def test_steady_burn_opens_a_ticket() -> None:
    fired = burn_alerts(
        "latency", TARGET, _windows({259200.0: 0.0011, 21600.0: 0.0012}), rules=WORKBOOK_RULES
    )
    assert [(a.severity, a.factor, a.long_window_s, a.short_window_s) for a in fired] == [
        ("ticket", 1.0, 259200.0, 21600.0)
    ]


def test_the_table_is_the_workbooks() -> None:
    assert [(r.severity, r.factor, r.long_s, r.short_s) for r in WORKBOOK_RULES] == [
        ("page", 14.4, 3600.0, 300.0),
        ("page", 6.0, 21600.0, 1800.0),
        ("ticket", 1.0, 259200.0, 21600.0),
    ]


def test_the_conservative_preset_pages_on_half_the_budget_in_six_hours() -> None:
    rules = burn_rules(SloConfig(burn_rules="conservative"))
    assert [(r.severity, r.factor, r.long_s, r.short_s) for r in rules] == [
        ("page", 60.0, 21600.0, 1800.0),
        ("ticket", 5.0, 259200.0, 21600.0),
    ]
    # 2% of requests failing for an hour pages under the Workbook's table, not here
    hour_of_errors = _windows({3600.0: 0.02, 300.0: 0.02, 21600.0: 0.02 / 6, 1800.0: 0.02})
    assert burn_alerts("a", TARGET, hour_of_errors, rules=WORKBOOK_RULES)
    assert burn_alerts("a", TARGET, hour_of_errors, rules=rules) == []
    half_gone = _windows({21600.0: 0.061, 1800.0: 0.07})  # 50% of 30 days' 0.1% in 6 h
    assert [a.severity for a in burn_alerts("a", TARGET, half_gone, rules=rules)] == ["page"]


def test_a_teams_own_rules_in_dnnops_yaml_follow_its_slo_window() -> None:
    slo = SloConfig.model_validate(
        {
            "window": "7d",
            "burn_rules": [
                {"severity": "page", "budget": 0.02, "long": "1h", "short": "5m"},
                {"severity": "ticket", "factor": 2, "long": "1d", "short": "2h"},
            ],
        }
    )
    assert [(r.severity, r.factor) for r in burn_rules(slo)] == [("page", 3.36), ("ticket", 2.0)]
    page = burn_rules(SloConfig(window=7 * 86400.0))[0]
    assert page.factor == 3.36, "the Workbook's 2% in an hour, for a 7-day budget"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"severity": "page", "long": "1h", "short": "5m"}, "exactly one of factor or budget"),
        (
            {"severity": "page", "factor": 2, "budget": 0.1, "long": "1h", "short": "5m"},
            "exactly one of factor or budget",
        ),
        ({"severity": "page", "factor": 2, "long": "5m", "short": "1h"}, "shorter than"),
        ({"severity": "urgent", "factor": 2, "long": "1h", "short": "5m"}, "severity"),
    ],
)
def test_a_bad_burn_rule_is_refused_naming_it(
    tmp_path: Path, rule: dict[str, object], message: str
) -> None:
    from dnnops.config import load_config

    path = tmp_path / "dnnops.yaml"
    path.write_text(
        orjson.dumps(
            {"name": "x", "data": {"source": "builtin:wine"}, "slo": {"burn_rules": [rule]}}
        ).decode()
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert "slo.burn_rules" in str(raised.value) and message in str(raised.value)
    path.write_text(
        orjson.dumps(
            {"name": "x", "data": {"source": "builtin:wine"}, "slo": {"burn_rules": "fast"}}
        ).decode()
    )
    with pytest.raises(ConfigError, match="workbook"):
        load_config(path)


@given(st.floats(0, 1), st.floats(0.5, 0.9999))
def test_uniform_burn_fires_exactly_the_rules_it_exceeds(share: float, target: float) -> None:
    fired = burn_alerts(
        "x", target, lambda seconds: (round(share * 1_000_000), 1_000_000), rules=WORKBOOK_RULES
    )
    rate = burn_rate(round(share * 1_000_000), 1_000_000, target)
    assert [a.factor for a in fired] == [r.factor for r in WORKBOOK_RULES if rate >= r.factor]


def test_feature_freshness_is_the_age_of_the_last_value_seen() -> None:
    from dnnops.monitor.judgements.signals import freshness
    from dnnops.monitor.segments.digest import last_seen
    from dnnops.predlog.records import PredictionRecord

    records = [
        PredictionRecord(ts=100.0, status=200, inputs={"a": 1.0, "b": None}),
        PredictionRecord(ts=150.0, status=200, inputs={"a": float("nan"), "b": 2.0}),
        PredictionRecord(ts=170.0, status=200),  # inputs not sampled into the log
    ]
    last = last_seen(records[:1], ["a", "b", "c"])  # two digests merged keep the newest
    merged = {**last, **last_seen(records[1:], ["a", "b", "c"])}
    assert freshness(merged, ["a", "b", "c"], now=200.0) == {
        "a": 100.0,
        "b": 50.0,
        "c": None,
    }


def test_the_error_budget_covers_the_whole_slo_window(tmp_path: Path) -> None:
    """50 server errors ten days ago spend a 30-day budget; a 3-day reading would miss them."""
    from dnnops.config import SloConfig
    from dnnops.home import resolve_home
    from dnnops.inference.logger import PredictionLogger
    from dnnops.monitor.report import build_report
    from dnnops.registry.open import open_registry

    now = time.time()
    context = {"endpoint": "toy", "model": "toy", "version": "1"}
    answered = [
        {**context, "id": f"a{i}", "ts": now - 3600 - i, "status": 200, "output": 1}
        for i in range(9950)
    ]
    failed = [{**context, "id": None, "ts": now - 10 * 86400 + i, "status": 500} for i in range(50)]
    logger = PredictionLogger(tmp_path / "home" / "logs").start()
    try:
        logger.predictions.append([orjson.dumps(r) for r in failed + answered])
    finally:
        logger.close()
    home = resolve_home(tmp_path / "home")
    slo = SloConfig.model_validate(
        {"window": "30d", "objectives": [{"name": "ok", "kind": "success_rate", "target": 0.999}]}
    )
    report = build_report(
        open_registry(home), home.logs_dir, 86400.0, monitor=MonitorConfig(), slo=slo, now=now
    )
    [objective] = report.versions[0].slo
    assert objective.window_s == 30 * 86400 and objective.events == 10000
    assert objective.current == pytest.approx(0.995)
    assert objective.error_budget_remaining == pytest.approx(1 - 0.005 / 0.001)  # -4: spent
    assert objective.met is False
    three_days = SloConfig.model_validate({**slo.model_dump(), "window": "3d"})
    recent = build_report(
        open_registry(home), home.logs_dir, 86400.0, monitor=MonitorConfig(), slo=three_days,
        now=now,
    ).versions[0].slo[0]  # fmt: skip
    assert recent.met is True and recent.events == 9950


def test_a_page_rule_that_can_never_fire_is_named() -> None:
    slo = SloConfig.model_validate(
        {"objectives": [{"name": "acc", "kind": "accuracy", "target": 0.9},
                        {"name": "up", "kind": "success_rate", "target": 0.999}]}
    )  # fmt: skip
    [found] = unreachable_rules(slo)  # the 6x page and the ticket can fire at 0.9
    assert "objective 'acc' (target 0.9): its page rule at 14.4x" in found
    assert "can never fire (all events bad burn 10x)" in found
