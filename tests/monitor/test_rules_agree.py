"""One definition of success, checked end to end: the same traffic, replayed into the
prediction log that ``build_report`` reads and into the counters that the generated
Prometheus rules read (``promtool test rules``), fires the same burn-rate alerts."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import yaml

from dnnops.config import MonitorConfig, ProjectConfig
from dnnops.home import resolve_home
from dnnops.inference.logger import PredictionLogger
from dnnops.monitor.judgements.prometheus_rules import prometheus_rules
from dnnops.monitor.report import build_report
from dnnops.registry.open import open_registry
from tests.export.test_export import promtool

MINUTES = 120
THRESHOLD_S = 0.1
PROJECT = ProjectConfig.model_validate(
    {
        "name": "toy",
        "data": {"source": "builtin:wine"},
        "slo": {
            "objectives": [
                {"name": "availability", "kind": "success_rate", "target": 0.999},
                {"name": "latency", "kind": "latency", "target": 0.99, "threshold": "100ms"},
            ]
        },
    }
)
Fired = set[tuple[str, str, str]]
"""(objective, severity, factor) of each burn-rate rule firing."""


@dataclass(frozen=True)
class Minute:
    """One minute of traffic, one instance per request."""

    fast: int = 0
    slow: int = 0
    failed: int = 0
    refused: int = 0
    """Client errors (422): judged by nobody."""
    big_slow: int = 0
    """Instances of one more request, answered too slowly (0: none): a request counts once."""


def steady(minute: Minute, *, first: int = 0, last: int = MINUTES) -> list[Minute]:
    return [minute if first <= m < last else Minute(fast=100) for m in range(MINUTES)]


SCENARIOS = {
    "a tenth failing for 90 minutes": steady(Minute(fast=90, failed=10), first=30),
    "an outage that ended 30 minutes ago": steady(Minute(fast=80, failed=20), first=30, last=90),
    "clients sending bad requests": [Minute(fast=70, refused=30)] * MINUTES,
    "a fifth of the answers too slow": steady(Minute(fast=80, slow=20), first=60),
    "half failing, but too few to judge": [
        Minute(fast=m % 4 == 0, failed=m % 4 == 2) for m in range(MINUTES)
    ],
    "three slow requests of 1,500 rows among thousands": [
        Minute(fast=100, big_slow=1500 if 116 <= m < 119 else 0) for m in range(MINUTES)
    ],
}
EXPECTED: dict[str, Fired] = {  # what both must say, so the test cannot pass on silence
    "a tenth failing for 90 minutes": {
        ("availability", "page", "14.4"),
        ("availability", "page", "6.0"),
        ("availability", "ticket", "1.0"),
    },
    "an outage that ended 30 minutes ago": {("availability", "ticket", "1.0")},
    "clients sending bad requests": set(),
    "a fifth of the answers too slow": {
        ("latency", "page", "14.4"),
        ("latency", "page", "6.0"),
        ("latency", "ticket", "1.0"),
    },
    "half failing, but too few to judge": set(),
    "three slow requests of 1,500 rows among thousands": set(),  # 3 of 12,003 requests
}


def report_fires(folder: Path, traffic: list[Minute], now: float) -> Fired:
    """Write the traffic as the server logs it and read the report's burn rates."""
    context = {"endpoint": "toy", "model": "toy", "version": "1"}
    records = []
    for m, minute in enumerate(traffic):
        start = now - (MINUTES - m) * 60
        kinds = (
            [(200, 5.0)] * minute.fast
            + [(200, 500.0)] * minute.slow
            + [(500, 1.0)] * minute.failed
            + [(422, 1.0)] * minute.refused
        )
        for i, (status, latency_ms) in enumerate(kinds):
            record = {**context, "ts": start + 59 * i / len(kinds), "status": status}
            if status == 200:
                record |= {"id": f"{m}-{i}", "output": 1, "latency_ms": latency_ms}
            records.append(orjson.dumps(record))
        for part in range(minute.big_slow):  # one request: its instances share its latency
            record = {**context, "ts": start + 30, "status": 200, "id": f"{m}-big-{part}"}
            record |= {"output": 1, "latency_ms": 900.0, **({"part": part} if part else {})}
            records.append(orjson.dumps(record))
    logger = PredictionLogger(folder / "home" / "logs").start()
    try:
        logger.predictions.append(records)
    finally:
        logger.close()
    home = resolve_home(folder / "home")
    report = build_report(
        open_registry(home), home.logs_dir, 3600.0, monitor=MonitorConfig(), slo=PROJECT.slo,
        now=now,
    )  # fmt: skip
    return {
        (objective.name, rate.severity, str(rate.factor))
        for section in report.versions
        for objective in section.slo
        for rate in objective.burn_rates
        if rate.firing
    }


def counter_series(traffic: list[Minute]) -> list[dict[str, str]]:
    """The server's counters for the same traffic, sampled every minute."""
    labels = 'endpoint="toy",model="toy",version="1"'
    counters: dict[str, list[int]] = {
        f'dnnops_requests_total{{{labels},status="200"}}': [],
        f'dnnops_requests_total{{{labels},status="500"}}': [],
        f'dnnops_requests_total{{{labels},status="422"}}': [],
        f"dnnops_instances_total{{{labels}}}": [],
        f"dnnops_request_duration_seconds_count{{{labels}}}": [],
        f'dnnops_request_duration_seconds_bucket{{{labels},le="0.1"}}': [],
    }
    totals = [0] * len(counters)
    for minute in [Minute(), *traffic]:  # the first sample is before any traffic
        requests = minute.fast + minute.slow + (1 if minute.big_slow else 0)
        instances = minute.fast + minute.slow + minute.big_slow
        step = [requests, minute.failed, minute.refused, instances, requests, minute.fast]
        totals = [t + s for t, s in zip(totals, step, strict=True)]
        for values, total in zip(counters.values(), totals, strict=True):
            values.append(total)
    return [{"series": s, "values": " ".join(map(str, v))} for s, v in counters.items()]


def promtool_agrees(folder: Path, traffic: list[Minute], expected: Fired) -> str:
    """Run ``promtool test rules`` expecting exactly ``expected``; its output if it
    disagrees, else the empty string."""
    rules = prometheus_rules(PROJECT)
    by_key = {
        (r["labels"]["objective"], r["labels"]["severity"], r["labels"]["factor"]): r
        for r in [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
        if "objective" in r.get("labels", {})
    }
    (folder / "rules.yml").write_text(yaml.safe_dump(rules))
    checks = []
    for name in ("DnnopsErrorBudgetBurnPage", "DnnopsErrorBudgetBurnTicket"):
        alerts = [
            {
                "exp_labels": {**by_key[key]["labels"], "version": "1"},  # per version
                "exp_annotations": by_key[key]["annotations"],
            }
            for key in sorted(expected)
            if by_key[key]["alert"] == name
        ]
        checks.append({"eval_time": f"{MINUTES}m", "alertname": name, "exp_alerts": alerts})
    unit_test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {"interval": "1m", "input_series": counter_series(traffic), "alert_rule_test": checks}
        ],
    }
    (folder / "test.yml").write_text(yaml.safe_dump(unit_test, sort_keys=False))
    tested = subprocess.run(
        [promtool(), "test", "rules", str(folder / "test.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return "" if tested.returncode == 0 else tested.stdout + tested.stderr


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_report_and_the_prometheus_rules_fire_the_same_alerts(
    tmp_path: Path, scenario: str
) -> None:
    now = time.time() // 60 * 60  # on a minute, as Prometheus samples
    fired = report_fires(tmp_path, SCENARIOS[scenario], now)
    assert fired == EXPECTED[scenario]
    assert promtool_agrees(tmp_path, SCENARIOS[scenario], fired) == ""
