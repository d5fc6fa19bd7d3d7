"""One definition of each signal alert, checked minute by minute: the server's evaluation
(the report's readings, the alert ledger's hold-down, the clearing level of a firing alert)
and the generated Prometheus rules (``for:``, ``ALERTS``), run by ``promtool test rules``
on the same numbers, fire and clear in the same minutes, and neither flaps on a boundary."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from dnnops.config import ProjectConfig
from dnnops.monitor.judgements.alerts import MONITOR_KINDS, alerts_from_report
from dnnops.monitor.judgements.prometheus_rules import prometheus_rules
from dnnops.monitor.judgements.report_types import (
    Report,
    SegmentCounts,
    SignalReading,
    VersionSection,
)
from dnnops.monitor.judgements.signal_readings import Context, RecentRequests, read_signals
from dnnops.monitor.judgements.sli import VersionSlis
from dnnops.monitor.report import recent_requests
from dnnops.monitor.segments.digest import MinuteCounts, Stats
from dnnops.registry.alerts import AlertStore
from dnnops.registry.db import open_engine
from tests.export.test_export import promtool

PROJECT = ProjectConfig.model_validate(
    {"name": "toy", "data": {"source": "builtin:wine"}, "monitor": {"cost_budget": 0.0001}}
)
MONITOR = PROJECT.monitor
START = datetime(2026, 1, 1, tzinfo=UTC)
SLIS = VersionSlis("toy", "toy", "1", 500, 0, 1.0, 0.0, 1.0, 1.0, *[1.0] * 6, 0.9, [], 1.0)


class Ledger:
    """The server's side: each minute's readings through the alert evaluation and the
    ledger, on a clock that moves a minute at a time."""

    def __init__(self, folder: Path) -> None:
        self.minute = 0
        self.store = AlertStore(
            open_engine(f"sqlite:///{folder / 'meta.db'}"),
            clock=lambda: START + timedelta(minutes=self.minute),
        )
        self.deliveries: list[tuple[int, str]] = []

    def evaluate(self, minute: int, readings: list[SignalReading]) -> set[str]:
        """The alertnames firing after this minute's evaluation."""
        self.minute = minute
        report = Report(0.0, 3600.0, 0.0, 0, SegmentCounts(0, 0), [VersionSection(SLIS)])
        report.versions[0] = VersionSection(SLIS, signals=readings)
        firing = self.store.firing_keys(MONITOR_KINDS)
        raised = alerts_from_report(report, monitor=MONITOR, firing=firing)
        changed = self.store.record(raised, MONITOR_KINDS)
        self.deliveries += [(minute, "firing") for _ in changed.fresh]
        self.deliveries += [(minute, "resolved") for _ in changed.resolved]
        return {key.rsplit("/", 1)[1] for key in self.store.firing_keys(MONITOR_KINDS)}


def promtool_fires(
    folder: Path, series: dict[str, list[float]], firing: list[set[str]], signal: str
) -> str:
    """``promtool test rules`` expecting ``signal``'s alert exactly in the minutes of
    ``firing``; its output when it disagrees, else the empty string."""
    rules = prometheus_rules(PROJECT)
    [rule] = [
        r
        for g in rules["groups"]
        for r in g["rules"]
        if r.get("labels", {}).get("signal") == signal and "alert" in r
    ]
    (folder / "rules.yml").write_text(yaml.safe_dump(rules))
    labels = {"endpoint": "toy", "model": "toy", "version": "1", **rule["labels"]}
    if signal == "client_errors":  # a rule over counters summed by version
        labels = {"version": "1", **rule["labels"]}
    checks = [
        {
            "eval_time": f"{minute}m",
            "alertname": rule["alert"],
            "exp_alerts": (
                [{"exp_labels": labels, "exp_annotations": rule["annotations"]}]
                if signal in fired
                else []
            ),
        }
        for minute, fired in enumerate(firing)
    ]
    unit_test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": name, "values": " ".join(f"{v:g}" for v in values)}
                    for name, values in series.items()
                ],
                "alert_rule_test": checks,
            }
        ],
    }
    (folder / "test.yml").write_text(yaml.safe_dump(unit_test, sort_keys=False))
    tested = subprocess.run(
        [promtool(), "test", "rules", str(folder / "test.yml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return "" if tested.returncode == 0 else tested.stdout + tested.stderr


CONFIDENCE = (
    [0.02] * 10  # calm
    + [0.15] * 4  # past the threshold for 4 minutes: shorter than the 5-minute hold-down
    + [0.02] * 6
    + [0.12] * 20  # past it for 20 minutes: fires after 5
    + [0.09, 0.11] * 5  # on the boundary, above the clearing level: stays firing
    + [0.05] * 10  # under the clearing level: clears
)


def test_a_gauge_signal_fires_holds_and_clears_in_the_same_minutes(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    threshold = MONITOR.alerts.confidence_drop
    assert threshold is not None
    clear = threshold * MONITOR.alerts.clear
    firing = [
        ledger.evaluate(m, [SignalReading("confidence_drop", v, threshold, clear, {})])
        for m, v in enumerate(CONFIDENCE)
    ]
    fired = [m for m, f in enumerate(firing) if f]
    assert fired == list(range(25, 50)), "fires after its hold-down, clears under 0.08"
    assert ledger.deliveries == [(25, "firing"), (50, "resolved")], "one of each, no flapping"
    series = {
        'dnnops_signal_value{endpoint="toy",model="toy",version="1",signal="confidence_drop"}': [
            *CONFIDENCE
        ]
    }
    assert promtool_fires(tmp_path, series, firing, "confidence_drop") == ""


TRAFFIC = (  # (answered, refused) each minute
    [(100, 0)] * 10
    + [(40, 60)]  # one bad minute: 12% of the five
    + [(100, 0)] * 9
    + [(40, 60)] * 8  # a flood: 60% for 8 minutes
    + [(100, 0)] * 12
    + [(1, 2)] * 10  # two thirds refused, but 15 requests in five minutes: too few to judge
)


def test_client_errors_are_judged_alike_from_the_log_and_from_the_counters(
    tmp_path: Path,
) -> None:
    ledger = Ledger(tmp_path)
    bucket = START.timestamp()
    history = [
        MinuteCounts(bucket + 60 * m, answered + refused, answered, 0, {}, refused)
        for m, (answered, refused) in enumerate(TRAFFIC)
    ]
    firing = []
    for minute in range(len(TRAFFIC) + 1):
        now = bucket + 60 * minute  # the minute's own traffic has not happened yet
        recent = recent_requests(history[:minute], now, MONITOR.alerts.client_errors_window)
        readings = [r for r in _read(recent) if r.signal == "client_errors"]
        firing.append(ledger.evaluate(minute, readings))
    fired = [m for m, f in enumerate(firing) if f]
    assert fired == list(range(24, 32)), "after a minute of over 25%, until under 20%"
    assert [d for _, d in ledger.deliveries] == ["firing", "resolved"]
    labels = 'endpoint="toy",model="toy",version="1"'
    totals = {"200": [0], "422": [0]}
    for answered, refused in TRAFFIC:
        totals["200"].append(totals["200"][-1] + answered)
        totals["422"].append(totals["422"][-1] + refused)
    series = {
        f'dnnops_requests_total{{{labels},status="200"}}': [float(v) for v in totals["200"]],
        f'dnnops_requests_total{{{labels},status="422"}}': [float(v) for v in totals["422"]],
        f"dnnops_instances_total{{{labels}}}": [float(v) for v in totals["200"]],
    }
    assert promtool_fires(tmp_path, series, firing, "client_errors") == ""


def _read(recent: RecentRequests) -> list[SignalReading]:
    """The readings the report makes of a version with only these recent requests."""
    no_version: Any = None  # nothing else is read: no confidence, labels or inputs
    return read_signals(Context(VersionSection(SLIS), Stats(), no_version, MONITOR, recent, 0.0))
