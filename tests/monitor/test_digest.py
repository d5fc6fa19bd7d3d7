"""Digests: every part merges exactly, sketches keep their accuracy, drift from counts
equals drift from values, and settled segments are read once and kept on disk."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnnops.data.profile import profile_features
from dnnops.monitor.segments.digest import Reference, Stats, digest_records, stats_of
from dnnops.monitor.segments.digest_store import DigestStore, fingerprint
from dnnops.monitor.stats.dataset_drift import reference_from_frame
from dnnops.monitor.stats.drift import drift_from_counts, feature_drift, percentile_counts
from dnnops.monitor.stats.sketch import RELATIVE_ACCURACY, QuantileSketch
from dnnops.predlog.records import PredictionRecord
from dnnops.predlog.writer import SegmentWriter

RNG = np.random.default_rng(0)
FRAME = pd.DataFrame(
    {
        "a": RNG.normal(0, 1, 2000),
        "b": RNG.normal(5, 2, 2000),
        "c": RNG.choice(["x", "y", "z"], 2000),
    }
)
REFERENCE = Reference(reference_from_frame(FRAME), ["a", "b", "c"], tensor=False)

record_strategy = st.fixed_dictionaries(
    {
        "ts": st.floats(0, 600),
        "status": st.sampled_from([200, 200, 200, 422, 503]),
        "latency_ms": st.floats(0.01, 5000),
        "model_ms": st.floats(0.01, 100),
        "cpu_ms": st.floats(0, 50),
        "probabilities": st.lists(st.floats(0, 1), min_size=2, max_size=2),
        "output": st.sampled_from([0, 1]),
        "inputs": st.fixed_dictionaries(
            {"a": st.floats(-4, 4), "b": st.floats(-1, 11), "c": st.sampled_from(["x", "y", "q"])}
        ),
    }
).map(PredictionRecord.from_json)


def _comparable(stats: Stats) -> dict[str, Any]:
    data = stats.to_json()
    for name in ("confidence_sum", "cpu_ms_sum", "pca_error_sum"):
        data[name] = round(data[name], 6)
    return data


@settings(max_examples=40, deadline=None)
@given(st.lists(record_strategy, min_size=2, max_size=40), st.data())
def test_stats_of_two_parts_merge_into_the_stats_of_both(
    records: list[PredictionRecord], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(1, len(records) - 1))
    whole = stats_of(records, REFERENCE, [100.0, 1000.0])
    parts = stats_of(records[:cut], REFERENCE, [100.0, 1000.0]).merge(
        stats_of(records[cut:], REFERENCE, [100.0, 1000.0])
    )
    assert _comparable(parts) == _comparable(whole)
    assert Stats.from_json(orjson.loads(orjson.dumps(whole.to_json()))) == whole


@given(st.lists(st.floats(0.001, 1e6), min_size=1, max_size=300))
def test_sketch_quantiles_are_within_one_percent_of_the_value_of_that_rank(
    values: list[float],
) -> None:
    sketch = QuantileSketch().add(np.array(values))
    ordered = sorted(values)
    for q in (0.0, 0.5, 0.95, 0.99, 1.0):
        exact = ordered[math.floor(q * (len(values) - 1))]
        assert abs(sketch.quantile(q) - exact) <= RELATIVE_ACCURACY * exact * 1.0001


@pytest.mark.parametrize("method", ["psi", "ks_wasserstein"])
def test_drift_from_counts_equals_drift_from_values(method: str) -> None:
    [profile] = profile_features(FRAME[["b"]], set())
    for shift in (0.0, 0.3, 1.0):
        values = RNG.normal(5 + shift, 2, 5000)
        counts = percentile_counts(profile.percentiles or [], values)
        direct = feature_drift(profile, values, method)
        counted = drift_from_counts(profile, [int(c) for c in counts], method)
        assert counted.score == pytest.approx(direct.score)
        assert counted.drifted == direct.drifted
    [category] = profile_features(FRAME[["c"]], {"c"})
    values = np.array(["x"] * 50 + ["q"] * 50, dtype=object)
    direct = feature_drift(category, values)
    assert drift_from_counts(category, {"x": 50, "q": 50}).score == pytest.approx(direct.score)


def _segment(folder: Path, records: list[PredictionRecord]) -> Path:
    writer = SegmentWriter(folder, "predictions").start()
    writer.append([r.encode() for r in records])
    writer.flush()
    writer.close()
    [path] = folder.glob("predictions-*.log")
    return path


def _settle(path: Path) -> None:
    old = path.stat().st_mtime - 120
    os.utime(path, (old, old))


def _build(records: list[PredictionRecord]) -> Any:
    return digest_records(records, lambda model, version: REFERENCE, [100.0])


def _records(count: int, start: float = 0.0) -> list[PredictionRecord]:
    return [
        PredictionRecord.from_json(
            {
                "id": f"p{start}-{i}",
                "ts": start + i,
                "endpoint": "e",
                "model": "m",
                "version": "1",
                "status": 200,
                "latency_ms": 1.0 + i,
                "probabilities": [0.25, 0.75],
                "output": 1,
                "inputs": {"a": 0.1 * i, "b": 5.0, "c": "x"},
            }
        )
        for i in range(count)
    ]


def test_a_settled_segment_is_digested_once_and_kept_on_disk(tmp_path: Path) -> None:
    segment = _segment(tmp_path / "logs", _records(150))
    store = DigestStore(tmp_path / "digests", fingerprint([100.0]))
    live = store.digest(segment, _build)
    assert store.built == 1 and not (tmp_path / "digests").exists()  # still being written
    _settle(segment)
    first = store.digest(segment, _build)
    again = DigestStore(tmp_path / "digests", fingerprint([100.0])).digest(segment, _build)
    assert store.built == 2
    assert sorted(again.stats) == sorted(first.stats) == sorted(live.stats)
    assert {k: _comparable(v) for k, v in again.stats.items()} == {
        k: _comparable(v) for k, v in first.stats.items()
    }
    [rows] = again.rows.values()
    assert rows.ids.tolist() == [f"p0.0-{i}" for i in range(150)]
    assert rows.outputs.shape == (150, 2)
    minutes = sorted(bucket for _, bucket in first.stats)
    assert minutes == [0.0, 60.0, 120.0]  # 150 seconds of records, one stats per minute

    other = DigestStore(tmp_path / "digests", fingerprint([250.0]))  # another objective
    other.digest(segment, _build)
    assert other.built == 1


def test_a_grown_or_damaged_digest_is_computed_afresh(tmp_path: Path) -> None:
    segment = _segment(tmp_path / "logs", _records(10))
    _settle(segment)
    store = DigestStore(tmp_path / "digests", fingerprint([100.0]))
    store.digest(segment, _build)
    [summary] = (tmp_path / "digests").glob("*[0-9a-f].json")
    summary.write_bytes(b"{not json")
    assert sum(s.requests for s in store.digest(segment, _build).stats.values()) == 10
    assert store.built == 2
    with segment.open("ab") as grown:  # an old segment appended to again
        grown.write(b"\0")
    _settle(segment)
    store.digest(segment, _build)
    assert store.built == 3
    kept = sorted(p.name.split(".", 4)[-1] for p in (tmp_path / "digests").iterdir())
    assert kept == ["counts.json", "ids.npy", "json", "npz"], kept  # the stale ones are gone


def test_a_counts_only_digest_carries_what_the_budgets_read(tmp_path: Path) -> None:
    """Segments before a report's window are read as counts: a few KB instead of the
    minutes' sketches and histograms; a damaged counts file is computed afresh."""
    segment = _segment(tmp_path / "logs", _records(150))
    _settle(segment)
    store = DigestStore(tmp_path / "digests", fingerprint([100.0]))
    whole = store.digest(segment, _build)
    light = store.digest(segment, _build, counts_only=True)
    assert store.built == 1, "read from the kept counts, not the segment"
    assert light.stats == {}, "no sketch or histogram was parsed"
    counted = {(key, m.bucket): m for key, minutes in light.counts.items() for m in minutes}
    assert sorted(counted) == sorted(whole.stats)
    for minute, stats in whole.stats.items():
        count = counted[minute]
        assert (count.requests, count.predictions, count.server_errors) == (
            stats.requests,
            stats.predictions,
            stats.server_errors,
        )
        assert count.slower_than == stats.slower_than
    assert [r.ids.tolist() for r in light.rows.values()] == [
        r.ids.tolist() for r in whole.rows.values()
    ]
    assert store.digest(segment, _build, counts_only=True, rows=False).rows == {}
    [counts] = (tmp_path / "digests").glob("*.counts.json")
    counts.write_bytes(b"[1, 2")
    assert (
        sum(s.requests for s in store.digest(segment, _build, counts_only=True).stats.values())
        == 150
    )
    assert store.built == 2


def test_a_growing_segment_is_followed_frame_by_frame(tmp_path: Path) -> None:
    from dnnops.predlog.frames import encode_frame

    segment = _segment(tmp_path / "logs", _records(100))
    store = DigestStore(tmp_path / "digests", fingerprint([100.0]))
    store.digest(segment, _build)
    more = [r.encode() for r in _records(70, start=100.0)]
    torn = encode_frame(more[-1])
    with segment.open("ab") as log:  # 69 whole records and half of the 70th
        log.write(b"".join(encode_frame(p) for p in more[:-1]) + torn[: len(torn) // 2])
    grown = store.digest(segment, _build)
    assert sum(s.requests for s in grown.stats.values()) == 169
    with segment.open("ab") as log:  # the writer finishes the record
        log.write(torn[len(torn) // 2 :])
    done = store.digest(segment, _build)
    fresh = DigestStore(tmp_path / "other", fingerprint([100.0])).digest(segment, _build)
    assert {k: _comparable(v) for k, v in done.stats.items()} == {
        k: _comparable(v) for k, v in fresh.stats.items()
    }
    [rows] = done.rows.values()
    assert rows.ids.tolist() == [r.id for r in _records(100) + _records(70, start=100.0)]


def test_a_segment_digested_in_chunks_equals_the_segment_digested_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks bound a report's memory (``CHUNK_RECORDS``); the digest must not change."""
    import dnnops.monitor.segments.digest_store as digest_store

    records = _records(150) + _records(90, start=150.0)
    mixed = [
        PredictionRecord.from_json(
            {**r.to_json(), "version": "2" if i % 3 else "1", "status": 503 if i % 11 == 0 else 200}
        )
        for i, r in enumerate(records)
    ]
    segment = _segment(tmp_path / "logs", mixed)
    whole = DigestStore(tmp_path / "whole", fingerprint([100.0])).digest(segment, _build)
    sizes: list[int] = []

    def build(chunk: list[PredictionRecord]) -> Any:
        sizes.append(len(chunk))
        return _build(chunk)

    monkeypatch.setattr(digest_store, "CHUNK_RECORDS", 7)
    chunked = DigestStore(tmp_path / "chunked", fingerprint([100.0])).digest(segment, build)
    assert max(sizes) == 7 and sum(sizes) == len(mixed)
    assert len(whole.stats) == 8  # two versions over four minutes: chunks cut minutes
    assert {k: _comparable(v) for k, v in chunked.stats.items()} == {
        k: _comparable(v) for k, v in whole.stats.items()
    }
    assert whole.rows.keys() == chunked.rows.keys()
    for group, rows in whole.rows.items():
        assert chunked.rows[group].ids.tolist() == rows.ids.tolist()
        assert np.array_equal(chunked.rows[group].outputs, rows.outputs)
        assert np.array_equal(chunked.rows[group].ts, rows.ts)


def test_digests_of_deleted_segments_are_pruned(tmp_path: Path) -> None:
    segment = _segment(tmp_path / "logs", _records(10))
    _settle(segment)
    store = DigestStore(tmp_path / "digests", fingerprint([100.0]))
    store.digest(segment, _build)
    assert store.prune([segment]) == 0
    assert len(list((tmp_path / "digests").iterdir())) == 4  # stats, counts, columns, ids
    segment.unlink()
    assert store.prune([]) == 1
    assert list((tmp_path / "digests").iterdir()) == []


def test_a_digest_that_cannot_be_kept_still_answers(tmp_path: Path) -> None:
    segment = _segment(tmp_path / "logs", _records(10))
    _settle(segment)
    (tmp_path / "digests").write_text("a file where the folder should be")
    store = DigestStore(tmp_path / "digests", fingerprint([100.0]))
    assert sum(s.requests for s in store.digest(segment, _build).stats.values()) == 10
