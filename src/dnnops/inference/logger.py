"""Prediction ids and records, written through the prediction and feedback logs.

Every instance gets an id (a per-process random prefix and a counter: unique, cheap,
sortable by arrival) and one record; a request refused before inference gets one record
with its status, so monitoring can count ingestion errors.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dnnops.data.dataset import Inputs
from dnnops.data.table import TableBatch
from dnnops.predlog.reader import FEEDBACK, PREDICTIONS, outcome_folder
from dnnops.predlog.records import (
    FeedbackRecord,
    RequestContext,
    failure_record,
    prediction_records,
)
from dnnops.predlog.redaction import Mode, Redaction, redaction_for
from dnnops.predlog.writer import RotationPolicy, SegmentWriter


@dataclass(frozen=True)
class MediaLog:
    """What is logged of an image or text model's inputs beyond the inputs themselves."""

    descriptors: list[dict[str, float]] | None
    """Per instance, the numbers drift is judged on (``data/media/descriptors.py``)."""
    previews: list[str] | None = None
    """Per image, what the model saw as a small JPEG data URI, logged in the image's
    reference beside its digest (the log never keeps the image's bytes)."""


class PredictionLogger:
    def __init__(
        self,
        logs_dir: Path,
        log_inputs: float = 1.0,
        rotation: RotationPolicy | None = None,
        *,
        seed: int | None = None,
    ) -> None:
        self.logs_dir = logs_dir
        self.log_inputs = log_inputs
        self.predictions = SegmentWriter(logs_dir / PREDICTIONS, PREDICTIONS, rotation)
        self.feedback = SegmentWriter(logs_dir / FEEDBACK, FEEDBACK, rotation)
        self.rotation = rotation
        self.outcomes: dict[str, SegmentWriter] = {}
        """Each KPI's outcome log, opened on its first outcome (``outcome_writer``)."""
        self._prefix = os.urandom(4).hex()
        self._counter = itertools.count()
        self._random = random.Random(seed)

    def start(self) -> PredictionLogger:
        self.predictions.start()
        self.feedback.start()
        return self

    def close(self) -> None:
        self.predictions.close()
        self.feedback.close()
        for writer in self.outcomes.values():
            writer.close()

    def outcome_writer(self, name: str) -> SegmentWriter:
        """The log of the KPI ``name`` (a name ``monitor.kpis`` declares), started once."""
        writer = self.outcomes.get(name)
        if writer is None:
            folder = outcome_folder(self.logs_dir, name)
            writer = self.outcomes[name] = SegmentWriter(folder, FEEDBACK, self.rotation).start()
        return writer

    def new_ids(self, count: int) -> list[str]:
        return [f"{self._prefix}-{next(self._counter):x}" for _ in range(count)]

    def prediction_records(
        self,
        ids: Sequence[str],
        context: RequestContext,
        raw: Inputs | TableBatch,
        *,
        labels: np.ndarray,
        probabilities: np.ndarray | None,
        tiers: np.ndarray | None = None,
        shadow_of: Sequence[str] | None = None,
        redaction: Redaction | None = None,
        media: MediaLog | None = None,
        embeddings: np.ndarray | None = None,
    ) -> list[bytes]:
        """One record per instance; a shadow's records name the answered prediction they
        mirror (``shadow_of``), so labels sent for that id score the shadow too. A
        regression's records carry its number as ``output`` and no probabilities; a tiered
        version's name the tier that answered each instance; the sensitive features of
        ``redaction`` are logged hashed or not at all."""
        previews = media.previews if media is not None else None
        rows = (
            _rows(raw, previews) if redaction is None else redaction.rows(_records(raw, previews))
        )
        if self.log_inputs < 1.0:
            rows = [row if self._random.random() < self.log_inputs else None for row in rows]
        return prediction_records(
            list(ids),
            context,
            ts=time.time(),
            inputs=rows,
            outputs=list(labels),
            probabilities=probabilities,
            tiers=None if tiers is None else tiers.tolist(),
            shadow_of=None if shadow_of is None else list(shadow_of),
            descriptors=media.descriptors if media is not None else None,
            embeddings=None if embeddings is None else _rounded(embeddings),
        )

    def redaction(self, sensitive: frozenset[str], mode: Mode) -> Redaction | None:
        """How to log the inputs of a version whose sensitive features are ``sensitive``
        (the key lives in the home, beside the logs)."""
        return redaction_for(sensitive, mode, self.logs_dir.parent)

    def failure_record(
        self, context: RequestContext, status: int, error: str, *, reason: str | None = None
    ) -> bytes:
        return failure_record(context, ts=time.time(), status=status, error=error, reason=reason)

    def feedback_records(self, labels: Sequence[tuple[str, Any]]) -> list[bytes]:
        now = time.time()
        return [FeedbackRecord(str(pid), label, now).encode() for pid, label in labels]


EMBEDDING_DIGITS = 4
"""Decimals kept of each logged embedding value: far below the kernel's bandwidth, and
half the bytes of a float32's repr."""


def _rounded(embeddings: np.ndarray) -> list[list[float]]:
    rounded: list[list[float]] = np.round(embeddings.astype("float64"), EMBEDDING_DIGITS).tolist()
    return rounded


def _holds_bytes(batch: TableBatch) -> bool:
    """An image batch: a column of bytes (the first cell tells; a column is one kind)."""
    return any(
        column.dtype == object and len(column) and isinstance(column[0], bytes)
        for column in batch.columns.values()
    )


def _image_reference(row: dict[str, Any], preview: str | None) -> dict[str, Any]:
    """An image is logged by its SHA-256 and size, not its bytes (megabytes a request,
    and a photo is often personal): the digest matches it with the client's copy, the
    preview (64 pixels, what the model saw) shows a person what it was."""
    shown = {"preview": preview} if preview is not None else {}
    return {
        name: {"sha256": hashlib.sha256(value).hexdigest(), "bytes": len(value), **shown}
        if isinstance(value, bytes)
        else value
        for name, value in row.items()
    }


def _image_references(batch: TableBatch, previews: list[str] | None) -> list[dict[str, Any]]:
    shown = previews if previews is not None else [None] * batch.rows
    return [_image_reference(r, p) for r, p in zip(batch.records(), shown, strict=True)]


def _records(raw: Inputs | TableBatch, previews: list[str] | None) -> list[dict[str, Any]]:
    """One object per instance, keyed by feature (what redaction works on)."""
    if isinstance(raw, TableBatch):
        return _image_references(raw, previews) if _holds_bytes(raw) else capped(raw).records()
    if isinstance(raw, pd.DataFrame):
        return raw.to_dict(orient="records")  # type: ignore[return-value]
    raise TypeError("only tables have named features to redact")


LOGGED_CHARS = 16_384
"""The most of one text value the log keeps: a request of the body limit (8 MB) once
wrote a 7 MB value to the log. A longer one is cut and says so in itself."""


def capped(batch: TableBatch) -> TableBatch:
    """``batch`` with every text value over ``LOGGED_CHARS`` cut, ending with how long it
    was; the same batch when none is (the common case costs one pass over text columns)."""
    columns = dict(batch.columns)
    changed = False
    for name, column in batch.columns.items():
        if column.dtype != object:
            continue
        long = [
            i for i, v in enumerate(column.tolist()) if isinstance(v, str) and len(v) > LOGGED_CHARS
        ]
        if long:
            column = column.copy()
            for i in long:
                value = column[i]
                said = f"...[cut: {len(value)} characters, {LOGGED_CHARS} logged]"
                column[i] = value[:LOGGED_CHARS] + said
            columns[name], changed = column, True
    return TableBatch(columns, batch.rows, batch.numeric, batch.numeric_names) if changed else batch


def _rows(raw: Inputs | TableBatch, previews: list[str] | None) -> list[Any]:
    if isinstance(raw, TableBatch):
        if _holds_bytes(raw):
            return _image_references(raw, previews)
        if raw.numeric is not None and len(raw.numeric_names) == len(raw.columns):
            # rows of numbers in schema order, as lists: a third of the bytes of objects
            # keyed by feature name, and what the log's readers take fastest
            return list(np.ascontiguousarray(raw.numeric))
        return capped(raw).records()
    if isinstance(raw, pd.DataFrame):
        return raw.to_dict(orient="records")
    return list(np.ascontiguousarray(raw))  # orjson writes C-ordered numpy rows only
