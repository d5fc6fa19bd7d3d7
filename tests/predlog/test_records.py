"""The typed records: what the server writes is what every reader gets back, and a frame
that is not a record is counted as damage, never misread."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import orjson
import pytest

from dnnops.inference.logger import PredictionLogger
from dnnops.predlog.frames import FrameStats
from dnnops.predlog.reader import (
    FEEDBACK,
    PREDICTIONS,
    read_feedback,
    read_feedback_records,
    read_predictions,
)
from dnnops.predlog.records import (
    FeedbackRecord,
    PredictionRecord,
    RequestContext,
    UnreadableRecord,
)
from dnnops.predlog.writer import SegmentWriter

SRC = Path(__file__).resolve().parents[2] / "src" / "dnnops"


def test_what_the_server_logs_reads_back_as_typed_records(tmp_path: Path) -> None:
    logger = PredictionLogger(tmp_path).start()
    context = RequestContext(
        endpoint="churn", protocol="v1", model="churn", version="3", latency_ms=4.5, cpu_ms=0.2
    )
    try:
        ids = logger.new_ids(2)
        logger.predictions.append(
            logger.prediction_records(
                ids,
                context,
                np.array([[1.0, 2.0], [3.0, np.nan]], dtype="float32"),
                labels=np.array(["stay", "leave"], dtype=object),
                probabilities=np.array([[0.9, 0.1], [0.3, 0.7]], dtype="float32"),
            )
        )
        shadow = RequestContext(endpoint="churn", model="churn", version="4", shadow=True)
        logger.predictions.append(
            logger.prediction_records(
                [f"{ids[0]}.s4"],
                shadow,
                np.array([[1.0, 2.0]], dtype="float32"),
                labels=np.array([12.5]),
                probabilities=None,
                shadow_of=[ids[0]],
            )
        )
        logger.predictions.append([logger.failure_record(context, 422, "age: not a number")])
        logger.feedback.append(logger.feedback_records([(ids[0], "stay"), (ids[0], "leave")]))
    finally:
        logger.close()

    stay, leave, mirrored, refused = read_predictions(tmp_path / PREDICTIONS)
    assert (stay.id, stay.output, stay.model, stay.version) == (ids[0], "stay", "churn", "3")
    assert stay.probabilities == pytest.approx([0.9, 0.1])
    assert stay.confidence == pytest.approx(0.9)
    assert (stay.latency_ms, stay.cpu_ms, stay.model_ms) == (4.5, pytest.approx(0.2), None)
    assert leave.inputs[1] is None, "NaN is logged as null: JSON has no NaN"
    assert (mirrored.role, mirrored.label_id, mirrored.output) == ("shadow", ids[0], 12.5)
    assert mirrored.probabilities is None and mirrored.confidence is None
    assert (refused.answered, refused.status, refused.id) == (False, 422, None)
    assert refused.error == "age: not a number"
    assert read_feedback(tmp_path / FEEDBACK)[ids[0]].label == "leave", "the newest label wins"
    assert [r.label for r in read_feedback_records(tmp_path / FEEDBACK)] == ["stay", "leave"]


def test_a_record_round_trips_and_leaves_its_defaults_out() -> None:
    record = PredictionRecord(ts=1.5, status=200, endpoint="e", id="p-1", output=3)
    encoded = orjson.loads(record.encode())
    assert encoded == {"id": "p-1", "ts": 1.5, "endpoint": "e", "output": 3, "status": 200}
    assert PredictionRecord.from_json(encoded) == record
    feedback = FeedbackRecord("p-1", "cat", 2.0)
    assert FeedbackRecord.from_json(orjson.loads(feedback.encode())) == feedback


@pytest.mark.parametrize(
    "payload",
    [
        [1, 2, 3],
        {"ts": "yesterday", "status": 200},
        {"ts": 1.0, "status": "ok"},
        {"ts": 1.0, "status": True},
        {"ts": 1.0, "status": 200, "latency_ms": "fast"},
        {"ts": 1.0, "status": 200, "probabilities": 0.9},
    ],
)
def test_a_frame_that_is_not_a_prediction_record_is_refused(payload: object) -> None:
    with pytest.raises(UnreadableRecord):
        PredictionRecord.from_json(payload)


def test_damaged_records_are_counted_and_the_rest_read(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path, PREDICTIONS).start()
    good = PredictionRecord(ts=1.0, status=200, id="a", output=1)
    writer.append([good.encode(), b'{"ts": "soon", "status": 200}', b"[]", good.encode()])
    writer.close()
    stats = FrameStats()
    assert list(read_predictions(tmp_path, stats)) == [good, good]
    assert (stats.frames, stats.corrupt) == (4, 2)


def test_a_record_from_an_older_log_without_optional_fields_reads_with_defaults() -> None:
    record = PredictionRecord.from_json({"id": "x", "ts": 5, "status": 200, "output": 1})
    assert (record.endpoint, record.shadow, record.probabilities, record.latency_ms) == (
        "",
        False,
        None,
        None,
    )
    assert record.ts == 5.0 and isinstance(record.ts, float)


KEY_SPELLING = re.compile(
    r"(\.get\(|\[)\"(ts|status|inputs|output|probabilities|shadow_of|shadow|latency_ms|"
    r"model_ms|cpu_ms|prediction_id|label)\""
)
REQUEST_PAYLOADS = {
    # these also read request bodies and CSV rows of labels (the API's shape, not the log's)
    "serve/hot_path.py",
    "serve/feedback_routes.py",
    "serve/outcome_routes.py",
    "cli/serve.py",
    "cli/outcomes.py",
}


def test_no_reader_of_the_logs_spells_a_record_key() -> None:
    """Only ``predlog/records.py`` knows the log's keys: a module that uses the logs and
    reads a record through a dict again shows up here."""
    offenders = []
    for path in SRC.rglob("*.py"):
        relative = path.relative_to(SRC).as_posix()
        text = path.read_text()
        if relative in REQUEST_PAYLOADS or relative.startswith("predlog/"):
            continue
        if "dnnops.predlog" not in text and "dnnops.monitor.segments.digest" not in text:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if KEY_SPELLING.search(line):
                offenders.append(f"{relative}:{number}: {line.strip()}")
    assert offenders == [], "\n".join(offenders)
