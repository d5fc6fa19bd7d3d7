"""The dashboard's buckets merge exactly, and the report, the dashboard's time series and
the rollout gates agree on the same records: one aggregation (``stats_of``), one success
definition, one quantile sketch, one way of scoring labels."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnnops.monitor.segments.digest import Stats, stats_of
from dnnops.monitor.segments.timeseries import Bucket, merged, series, summarize
from dnnops.predlog.records import PredictionRecord
from dnnops.rollout.window import arm_stats

RECORD = st.fixed_dictionaries(
    {
        "id": st.text("abcdef0123456789", min_size=1, max_size=6),
        "ts": st.floats(0, 99.9),
        "endpoint": st.just("digits"),
        "version": st.sampled_from(["1", "2"]),
        "status": st.sampled_from([200, 200, 200, 422, 500, 504]),
        "latency_ms": st.floats(0.1, 3000),
        "output": st.integers(0, 3),
        "probabilities": st.lists(st.floats(0, 1), min_size=4, max_size=4),
        "cpu_ms": st.floats(0, 5),
    }
).map(PredictionRecord.from_json)


@settings(max_examples=30, deadline=None)
@given(st.lists(RECORD, max_size=40), st.lists(RECORD, max_size=40))
def test_buckets_of_two_parts_merge_into_the_bucket_of_both(
    first: list[PredictionRecord], second: list[PredictionRecord]
) -> None:
    labels = {r.label_id: r.output for r in first[::2]}
    whole = summarize(first + second, labels, "digits", start=0.0, bucket_s=10.0)
    parts = [
        summarize(first, labels, "digits", start=0.0, bucket_s=10.0),
        summarize(second, labels, "digits", start=0.0, bucket_s=10.0),
    ]
    for key in set(whole) | set(parts[0]) | set(parts[1]):
        combined = merged(p[key] for p in parts if key in p)
        expected = whole[key]
        assert combined.stats.requests == expected.stats.requests
        assert combined.stats.latency.buckets == expected.stats.latency.buckets
        assert combined.stats.classes == expected.stats.classes
        assert combined.scored == expected.scored
        assert abs(combined.stats.confidence_sum - expected.stats.confidence_sum) < 1e-6


@settings(max_examples=30, deadline=None)
@given(st.lists(RECORD, max_size=60))
def test_the_report_the_dashboard_and_the_rollout_gate_agree(
    records: list[PredictionRecord],
) -> None:
    labels = {r.label_id: r.output for r in records[::3]}
    buckets = summarize(records, labels, "digits", start=0.0, bucket_s=10.0)
    for version in ("1", "2"):
        mine = [r for r in records if r.version == version]
        # the report: per-minute digests merged over the window
        minutes: dict[float, list[PredictionRecord]] = {}
        for record in mine:
            minutes.setdefault(record.ts // 60 * 60, []).append(record)
        report = Stats.merged([stats_of(part, None, ()) for part in minutes.values()])
        # the dashboard: 10-second buckets merged over the window
        board = merged(b for (v, _, _), b in buckets.items() if v == version)
        # the canary check over the same window
        arm = arm_stats(records, labels, "digits", version=version, shadow=False)

        point = board.point()
        assert report.success_rate == board.stats.success_rate == point["success_rate"]
        if arm.requests:
            assert arm.success_rate == report.success_rate
        p99 = report.latency.quantile(0.99)
        assert (math.isnan(p99) and point["latency_p99_ms"] is None) or (
            p99 == point["latency_p99_ms"] == arm.latency_p99_ms
        )
        assert report.classes == board.stats.classes == arm.class_counts
        assert (arm.labeled, arm.correct) == (board.scored.labeled, board.scored.correct)


def test_points_and_series_line_up_with_the_buckets() -> None:
    given = [
        {"id": "a", "ts": 1.0, "endpoint": "digits", "version": "1", "status": 200,
         "latency_ms": 4.0, "output": 1, "probabilities": [0.2, 0.8]},
        {"id": "b", "ts": 2.0, "endpoint": "digits", "version": "1", "status": 500},
        {"id": "e", "ts": 3.0, "endpoint": "digits", "version": "1", "status": 422},
        {"id": "c", "ts": 25.0, "endpoint": "digits", "version": "2", "status": 200,
         "latency_ms": 40.0, "output": 0, "probabilities": [0.9, 0.1]},
        {"id": "d", "ts": 25.0, "endpoint": "other", "version": "9", "status": 200},
    ]  # fmt: skip
    records = [PredictionRecord.from_json(r) for r in given]
    buckets = summarize(records, {"a": 1, "c": 1}, "digits", start=0.0, bucket_s=10.0)
    columns = series(buckets, 0.0, 30.0, bucket_s=10.0)
    assert columns.t == [0.0, 10.0, 20.0]
    first = columns.versions["1"]
    assert first["success_rate"] == [0.5, None, None], "the 422 was the client's fault"
    assert first["latency_p99_ms"][0] == pytest.approx(4.0, rel=0.01)  # the sketch: within 1%
    assert first["accuracy"] == [1.0, None, None]
    assert columns.versions["2"]["accuracy"] == [None, None, 0.0]
    assert columns.endpoint["predictions"] == [1.0, None, 1.0]
    assert Bucket().point()["success_rate"] is None
