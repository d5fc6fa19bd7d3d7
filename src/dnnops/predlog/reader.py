"""Read a log back: every intact record in order, torn tails and damage counted, never misread.

This is the API monitoring uses, and what ``dnnops logs show`` prints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson

from dnnops.predlog.frames import FrameStats, iter_frames
from dnnops.predlog.records import FeedbackRecord, PredictionRecord, UnreadableRecord

T = TypeVar("T")
PREDICTIONS, FEEDBACK = "predictions", "feedback"
OUTCOMES = "outcomes"
"""``logs/outcomes/<kpi>/``: each KPI's outcomes, as feedback records (the value is the
label), so they are read and joined with their predictions as labels are."""


def outcome_folder(logs_dir: Path, name: str) -> Path:
    return logs_dir / OUTCOMES / name


"""The two logs under the logs folder, and the prefixes of their segment files."""


def segments(folder: Path, prefix: str) -> list[Path]:
    return sorted(folder.glob(f"{prefix}-*.log")) if folder.is_dir() else []


def read_records(
    folder: Path, prefix: str, stats: FrameStats | None = None, *, since: float | None = None
) -> Iterator[dict[str, Any]]:
    """Records of every segment as plain objects, oldest first. With ``since``, segments
    last written before that moment are skipped unread: a record is stamped before it is
    written, so one stamped at or after ``since`` lies in a segment modified at or after it.
    (Older records may still come back from the segments read; filter on ``ts``.)"""
    return _read(folder, prefix, decode=_plain, stats=stats, since=since)


def records_of(data: bytes, stats: FrameStats | None = None) -> Iterator[dict[str, Any]]:
    """The intact records of one segment's bytes, as plain objects."""
    return _decoded(data, _plain, stats if stats is not None else FrameStats())


def read_predictions(
    folder: Path, stats: FrameStats | None = None, *, since: float | None = None
) -> Iterator[PredictionRecord]:
    """The prediction log's records, oldest first (``since`` as for ``read_records``)."""
    return _read(folder, PREDICTIONS, decode=PredictionRecord.decode, stats=stats, since=since)


def predictions_of(data: bytes, stats: FrameStats | None = None) -> Iterator[PredictionRecord]:
    """The intact prediction records of one segment's bytes."""
    return _decoded(data, PredictionRecord.decode, stats if stats is not None else FrameStats())


def read_feedback_records(
    folder: Path, stats: FrameStats | None = None, *, since: float | None = None
) -> Iterator[FeedbackRecord]:
    """The feedback log's records in the order they were written."""
    return _read(folder, FEEDBACK, decode=FeedbackRecord.decode, stats=stats, since=since)


def _read(
    folder: Path,
    prefix: str,
    *,
    decode: Callable[[bytes], T],
    stats: FrameStats | None,
    since: float | None,
) -> Iterator[T]:
    stats = stats if stats is not None else FrameStats()
    for path in segments(folder, prefix):
        if since is not None and segment_modified(path) < since:
            continue
        yield from _decoded(path.read_bytes(), decode, stats)


def _decoded(data: bytes, decode: Callable[[bytes], T], stats: FrameStats) -> Iterator[T]:
    """Every intact frame of ``data`` decoded; one that is not a record of the kind asked
    for is counted as damage, never misread."""
    for payload in iter_frames(data, stats):
        try:
            yield decode(payload)
        except UnreadableRecord:
            stats.corrupt += 1


def _plain(payload: bytes) -> dict[str, Any]:
    try:
        record = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise UnreadableRecord(f"not JSON: {exc}") from exc
    if not isinstance(record, dict):
        raise UnreadableRecord("a record is a JSON object")
    return record


def read_feedback(folder: Path, since: float | None = None) -> dict[str, FeedbackRecord]:
    """The newest feedback record (label, time) per prediction id; with ``since``, only
    feedback segments written since then are read."""
    return {r.prediction_id: r for r in read_feedback_records(folder, since=since)}


def read_labels(folder: Path, since: float | None = None) -> dict[str, Any]:
    """Ground truth by prediction id from the feedback log (the newest label of an id wins)."""
    return {pid: record.label for pid, record in read_feedback(folder, since).items()}


def segment_modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # removed by retention between the listing and now
        return 0.0
