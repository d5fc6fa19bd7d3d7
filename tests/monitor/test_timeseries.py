"""Per-bucket summaries merge exactly: the summary of a union is the merge of the parts."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from dnnops.monitor.timeseries import Summary, merged, series, summarize

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
)


@given(st.lists(RECORD, max_size=60), st.lists(RECORD, max_size=60))
def test_summaries_of_two_parts_merge_into_the_summary_of_both(
    first: list[dict[str, Any]], second: list[dict[str, Any]]
) -> None:
    labels = {r["id"]: r["output"] for r in first[::2]}
    whole = summarize(first + second, labels, "digits", 0.0, 10.0)
    parts = [
        summarize(first, labels, "digits", 0.0, 10.0),
        summarize(second, labels, "digits", 0.0, 10.0),
    ]
    for key in set(whole) | set(parts[0]) | set(parts[1]):
        combined = merged(p[key] for p in parts if key in p)
        expected = whole[key]
        assert combined.requests == expected.requests
        assert combined.latency_counts == expected.latency_counts
        assert combined.classes == expected.classes
        assert (combined.labeled, combined.correct) == (expected.labeled, expected.correct)
        assert abs(combined.confidence_sum - expected.confidence_sum) < 1e-6


def test_points_and_series_line_up_with_the_buckets() -> None:
    records = [
        {"id": "a", "ts": 1.0, "endpoint": "digits", "version": "1", "status": 200,
         "latency_ms": 4.0, "output": 1, "probabilities": [0.2, 0.8]},
        {"id": "b", "ts": 2.0, "endpoint": "digits", "version": "1", "status": 500},
        {"id": "c", "ts": 25.0, "endpoint": "digits", "version": "2", "status": 200,
         "latency_ms": 40.0, "output": 0, "probabilities": [0.9, 0.1]},
        {"id": "d", "ts": 25.0, "endpoint": "other", "version": "9", "status": 200},
    ]  # fmt: skip
    summaries = summarize(records, {"a": 1, "c": 1}, "digits", 0.0, 10.0)
    columns = series(summaries, 0.0, 30.0, 10.0)
    assert columns["t"] == [0.0, 10.0, 20.0]
    first = columns["versions"]["1"]
    assert first["success_rate"] == [0.5, None, None]
    assert first["latency_p99_ms"] == [5, None, None]  # the bound of the bucket holding 4 ms
    assert first["accuracy"] == [1.0, None, None]
    assert columns["versions"]["2"]["accuracy"] == [None, None, 0.0]
    assert columns["endpoint"]["predictions"] == [1.0, None, 1.0]
    assert Summary().point()["success_rate"] is None
