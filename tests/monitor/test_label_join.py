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

from dnnops.monitor.segments.digest import LabelRows
from dnnops.monitor.segments.label_columns import FeedbackColumns, LabelColumns, concatenate
from dnnops.monitor.segments.label_join import FeedbackSegment, IdIndex, LabelJoin, Segment
from dnnops.monitor.segments.labeled_rows import LabeledRows, class_positions, label_values
from dnnops.monitor.stats.ids import id_hashes
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

    monkeypatch.setattr("dnnops.monitor.segments.label_join.id_hashes", colliding)
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


def _feedback(
    key: str, modified: float, labels: list[tuple[str, object, float]]
) -> FeedbackSegment:
    columns = LabelColumns.of(
        [FeedbackRecord(prediction_id=pid, label=label, ts=ts) for pid, label, ts in labels]
    ).newest()
    return FeedbackSegment(Segment(key, modified - 60, modified, settled=True), lambda: columns)


GROUP = ("e", "m", "1", "served")
P1 = Segment("p1", started=0.0, modified=10.0, settled=True)
ROWS = {
    GROUP: LabelRows(np.array([f"a-{i}" for i in range(10)]), np.arange(10.0), np.eye(10)[:, :4])
}


def _report(
    folder: Path, feedback: list[FeedbackSegment], hashes: np.ndarray | None
) -> tuple[LabeledRows, LabelJoin]:
    join = LabelJoin(folder, feedback)
    wanted = join.wanted(P1, lambda: hashes)
    join.add(P1, wanted, ROWS if wanted else {})
    return join.result(0.0, 100.0).get(GROUP, LabeledRows.empty()), join


def test_the_join_is_kept_and_extended_only_with_what_is_new(tmp_path: Path) -> None:
    first = _feedback(
        "f1", 70.0, [("a-7", 2, 40.0), ("a-1", 3, 50.0), ("a-7", 1, 60.0), ("zz", 0, 70.0)]
    )
    joined, join = _report(tmp_path, [first], None)
    assert join.rows_read == 1
    assert joined.ts.tolist() == [1.0, 7.0] and joined.labels == [3, 1]
    assert joined.label_ts.tolist() == [50.0, 60.0]
    assert joined.outputs.tolist() == [[0, 1, 0, 0], [0, 0, 0, 0]]

    again, join = _report(tmp_path, [first], None)  # the ledger has the pair: no rows read
    assert join.rows_read == 0 and again.labels == [3, 1] and again.ts.tolist() == [1.0, 7.0]

    hashes = np.unique(id_hashes(ROWS[GROUP].ids))
    elsewhere = _feedback("f2", 80.0, [("b-1", 5, 80.0)])  # names none of p1's ids
    again, join = _report(tmp_path, [first, elsewhere], hashes)
    assert join.rows_read == 0 and again.labels == [3, 1]

    relabel = _feedback("f3", 90.0, [("a-7", 0, 90.0)])  # a newer segment relabels a-7
    again, join = _report(tmp_path, [first, elsewhere, relabel], hashes)
    assert join.rows_read == 1
    assert again.ts.tolist() == [1.0, 7.0] and again.labels == [3, 0]

    too_early = _feedback("f0", -1000.0, [("a-2", 9, -1000.0)])  # written before p1 opened
    again, join = _report(tmp_path, [too_early, first, elsewhere, relabel], hashes)
    assert join.rows_read == 0 and again.labels == [3, 0]

    join = LabelJoin(tmp_path, [first, relabel])  # p1 deleted by retention: its rows go
    assert join.result(0.0, 100.0) == {}
    kept = LabelJoin(tmp_path, [first]).ledger
    assert kept.predictions == set() and not any(kept.parts.values())


def test_a_damaged_ledger_is_joined_afresh(tmp_path: Path) -> None:
    first = _feedback("f1", 70.0, [("a-1", 3, 50.0)])
    _report(tmp_path, [first], None)
    (tmp_path / "joined" / "ledger.npz").write_bytes(b"not a zip")
    joined, join = _report(tmp_path, [first], None)
    assert join.rows_read == 1 and joined.labels == [3]


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
    from dnnops.inference.logger import PredictionLogger
    from dnnops.predlog.reader import read_feedback

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
