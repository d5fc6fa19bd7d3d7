"""Ground-truth capture: logged inputs that received a label, as rows of the training table.

Joins the prediction log with the feedback log by prediction id (the newest label of an id
wins). Shadow copies and refused requests are skipped: each answered instance counts once.

An image model's log keeps each image's digest, never its bytes, so its new labelled rows
are the photos added to its data source since the champion was registered
(``new_images``): a team labels photos by filing them under their class.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dnnops.data.schema import Schema, category_key
from dnnops.errors import UsageError
from dnnops.monitor.segments.scoring import finite_number
from dnnops.predlog.reader import PREDICTIONS, read_labels, read_predictions
from dnnops.predlog.records import PredictionRecord
from dnnops.predlog.redaction import HASH_PREFIX

TS = "_ts"
"""Column of the prediction's time, kept to split off the newest rows; dropped before training."""


def labeled_rows(
    logs_dir: Path, endpoint: str, schema: Schema, *, target: str, since: float = 0.0
) -> pd.DataFrame:
    """Feature columns (schema order), ``target`` and ``TS`` of every labeled prediction of
    ``endpoint`` made at or after ``since``, oldest first."""
    if schema.kind != "table" or schema.target is None:
        raise UsageError(
            "retraining from logged inputs needs a tabular schema with labels; for tensor "
            "(.npz) projects append the labeled inputs to the training file yourself"
        )
    labels = read_labels(logs_dir / "feedback")
    classes = {category_key(c): c for c in schema.target.classes}
    regression = schema.target.is_regression
    names = schema.feature_names
    rows: list[list[Any]] = []
    for record in read_predictions(logs_dir / PREDICTIONS, since=since):
        if not _answered(record, endpoint, since):
            continue
        label = labels.get(record.label_id)
        value = _target_value(label, classes, regression) if label is not None else None
        features = _features(record.inputs, names)
        if value is None or features is None:
            continue
        rows.append([*features, value, record.ts])
    return pd.DataFrame(rows, columns=[*names, target, TS])


def _target_value(label: Any, classes: Mapping[str, Any], regression: bool) -> Any:
    """The label as a training target: one of the classes, or a finite number for a
    regressor (None: the label cannot be learned from)."""
    if not regression:
        return classes.get(category_key(label))
    return finite_number(label)


def _answered(record: PredictionRecord, endpoint: str, since: float) -> bool:
    return (
        record.answered
        and not record.shadow
        and record.endpoint == endpoint
        and record.inputs is not None
        and record.ts >= since
    )


def _features(inputs: Any, names: list[str]) -> list[Any] | None:
    """One logged input as values in feature order; None when it does not fit the schema,
    or when the log hid a sensitive feature (dropped, or a keyed hash: not learnable)."""
    if isinstance(inputs, dict):
        if not all(n in inputs for n in names):
            return None
        values = [inputs.get(n) for n in names]
        hidden = any(isinstance(v, str) and v.startswith(HASH_PREFIX) for v in values)
        return None if hidden else values
    numbers = np.asarray(inputs, dtype="float64").ravel()
    return numbers.tolist() if len(numbers) == len(names) else None


def new_images(
    frame: pd.DataFrame, column: str, *, since: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the rows of files older than ``since``, the newer ones with their time in ``TS``):
    an image source's rows by when each file was written."""
    times = np.array([_written(path) for path in frame[column]], dtype="float64")
    newer = times >= since
    captured = frame[newer].copy()
    captured[TS] = times[newer]
    return frame[~newer], captured


def _written(path: object) -> float:
    try:
        return Path(str(path)).stat().st_mtime
    except OSError:  # a missing file: training names it; here it is simply not new
        return 0.0


def split_newest(frame: pd.DataFrame, share: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(older rows to train on, newest ``share`` of rows to judge the challenger on)."""
    ordered = frame.sort_values(TS, kind="stable")
    cut = len(ordered) - round(len(ordered) * share)
    return ordered.iloc[:cut], ordered.iloc[cut:]
