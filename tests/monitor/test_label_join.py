"""The label join of a report in numpy: ids matched by hash and confirmed, at any string
width, the newest label of an id winning, as the dict lookups it replaces did; the
feedback log kept as columns, read once per settled segment."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dnnops.monitor.digest import Digest, LabelRows
from dnnops.monitor.label_columns import FeedbackColumns, LabelColumns, concatenate, id_hashes
from dnnops.monitor.rollup import (
    IdIndex,
    LabeledRows,
    Rollup,
    class_positions,
    label_values,
)
from dnnops.predlog.records import FeedbackRecord

ID = st.text(alphabet="abcdef0123456789-", min_size=1, max_size=14)


@given(st.sets(ID, max_size=40), st.lists(ID, max_size=60))
def test_the_index_finds_exactly_the_ids_in_the_set(members: set[str], probes: list[str]) -> None:
    index = IdIndex(np.array(sorted(members), dtype=str))
    ordered = sorted(members)
    found = index.positions(np.array(probes, dtype=str))
    assert found.tolist() == [ordered.index(p) if p in members else -1 for p in probes]


def test_ids_whose_hashes_collide_are_still_told_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    def colliding(ids: np.ndarray) -> np.ndarray:
        return np.zeros(len(ids), dtype=np.uint64)  # the worst hash: every id collides

    monkeypatch.setattr("dnnops.monitor.rollup.id_hashes", colliding)
    members = np.array(["a", "b", "c"])
    index = IdIndex(members, colliding(members))
    assert index.positions(np.array(["c", "zz", "a"])).tolist() == [2, -1, 0]
    labels = LabelColumns.of(
        [FeedbackRecord(prediction_id=pid, label=n, ts=1.0) for n, pid in enumerate("abab")]
    )
    monkeypatch.setattr(LabelColumns, "hashes", property(lambda self: colliding(self.ids)))
    assert labels.newest().labels == [2, 3]


def test_hashes_do_not_depend_on_the_arrays_width() -> None:
    narrow = np.array(["ab", "c"], dtype="U2")
    wide = np.array(["ab", "c"], dtype="U20")
    assert id_hashes(narrow).tolist() == id_hashes(wide).tolist()
    assert id_hashes(np.array(["ab", "ba"])).tolist()[0] != id_hashes(np.array(["ba"]))[0]


def test_a_segments_labeled_rows_join_with_their_labels() -> None:
    labels = LabelColumns.of(
        [
            FeedbackRecord(prediction_id="a-7", label=2, ts=40.0),  # relabeled below
            FeedbackRecord(prediction_id="a-1", label=3, ts=50.0),
            FeedbackRecord(prediction_id="a-7", label=1, ts=60.0),
            FeedbackRecord(prediction_id="zz", label=0, ts=70.0),  # no such prediction
        ]
    ).newest()
    rollup = Rollup(0.0, 0.0, 100.0, labels=labels)
    ids = np.array([f"a-{i}" for i in range(10)])
    rows = LabelRows(ids, np.arange(10, dtype="float64"), np.eye(10)[:, :4])
    rollup.add(Digest(rows={("e", "m", "1", "served"): rows}))
    [parts] = rollup.labeled.values()
    joined = LabeledRows.joined(parts)
    assert joined.ts.tolist() == [1.0, 7.0] and joined.labels == [3, 1]
    assert joined.label_ts.tolist() == [50.0, 60.0]
    assert joined.outputs.tolist() == [[0, 1, 0, 0], [0, 0, 0, 0]]


def test_labels_of_any_json_type_keep_their_type_and_score_as_categories() -> None:
    written = [3, "3", 3.0, True, ["a"], ["a"], None, "cat", 3]
    labels = LabelColumns.of(
        [FeedbackRecord(prediction_id=f"p{i}", label=v, ts=1.0) for i, v in enumerate(written)]
    )
    assert labels.labels == written
    assert [type(v) for v in labels.labels] == [type(v) for v in written]
    twice = concatenate([labels, labels])
    assert twice.labels == written + written
    rows = LabeledRows(
        np.zeros(len(written)), np.zeros((len(written), 2), "float32"), labels.codes,
        labels.distinct, np.zeros(len(written)),
    )  # fmt: skip
    assert class_positions(rows, [3, "cat"]).tolist() == [0, 0, 0, -1, -1, -1, -1, 1, 0]
    assert np.isnan(label_values(rows)).tolist() == [False, False, False] + [True] * 5 + [False]


def test_settled_feedback_segments_are_kept_as_columns_and_equal_the_records(
    tmp_path: Path,
) -> None:
    from dnnops.predlog.reader import read_feedback
    from dnnops.serve.predictions import PredictionLogger

    logger = PredictionLogger(tmp_path / "logs").start()
    try:
        records = [
            {"prediction_id": f"p{i % 700}", "label": ["cat", 3, 2.5][i % 3], "ts": 10.0 + i}
            for i in range(1000)
        ]
        logger.feedback.append([orjson.dumps(r) for r in records])
    finally:
        logger.close()
    [segment] = (tmp_path / "logs" / "feedback").iterdir()
    os.utime(segment, (1.0, 1.0))  # settled long ago
    columns = FeedbackColumns(tmp_path / "logs" / "digests")
    first = columns.read(tmp_path / "logs" / "feedback")
    kept = sorted(p.suffix for p in (tmp_path / "logs" / "digests" / "labels").iterdir())
    assert kept == [".json", ".npz"]
    again = columns.read(tmp_path / "logs" / "feedback")
    expected = read_feedback(tmp_path / "logs" / "feedback")
    for read in (first, again):
        rows = zip(read.ids.tolist(), read.labels, read.ts.tolist(), strict=True)
        got = {pid: (label, ts) for pid, label, ts in rows}
        assert got == {pid: (r.label, r.ts) for pid, r in expected.items()}
    segment.unlink()  # retention deleted the segment: its columns go too
    assert len(columns.read(tmp_path / "logs" / "feedback")) == 0
    assert not list((tmp_path / "logs" / "digests" / "labels").iterdir())
