"""From the project's data section to tensors ready for training, plus what serving needs.

The schema is inferred on all rows (so no category of the valid or test part is
"unseen"); preprocessing and the reference profile are fitted on the training part only.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from dnnops.config import DataConfig, ModelConfig
from dnnops.data.dataset import Dataset
from dnnops.data.fingerprint import fingerprint
from dnnops.data.leaks import Finding, Labeled, Leak, identifier_columns, single_feature_leaks
from dnnops.data.preprocess import (
    Preprocessor,
    apply_preprocessing,
    describe_inputs,
    fit_preprocessor,
)
from dnnops.data.profile import Profile, build_profile
from dnnops.data.schema import Schema, category_key, infer_schema
from dnnops.data.sources import load_frame, load_source, split_columns
from dnnops.data.split import Split, split_indices
from dnnops.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Arrays:
    """Model-ready inputs ``x`` (N, *input_shape) float32 and targets ``y`` (N,): class
    indices (int64), or numbers (float32) for regression."""

    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class PreparedData:
    dataset: Dataset
    schema: Schema
    preprocessor: Preprocessor
    profile: Profile
    fingerprint: str
    split: Split
    train: Arrays
    valid: Arrays
    test: Arrays
    dropped: list[Finding] = field(default_factory=list)
    """Columns left out as row numbers or identifiers, with the reason."""
    leaks: list[Leak] = field(default_factory=list)
    """Features that alone predict the target on held-out rows (warned, kept)."""


@dataclass(frozen=True)
class ProjectData:
    """The project's rows as training sees them, and what was set aside on the way."""

    dataset: Dataset
    times: pd.Series | None
    """``data.split.by``'s values, row for row (not a feature)."""
    dropped: list[Finding]
    """Row numbers and identifiers left out of the features, with the reason."""

    @property
    def ignored(self) -> list[str]:
        return [f.column for f in self.dropped]


def load_dataset(data: DataConfig) -> Dataset:
    """The project's features and labels (see ``load_project_data``)."""
    return load_project_data(data).dataset


def load_project_data(data: DataConfig) -> ProjectData:
    """The project's data without its row numbers and identifiers (``data.keep`` keeps
    one) and without the time column that orders the split; rows without a label, or
    with an image that cannot be decoded, cannot be learned from and are left out."""
    dataset, times = _load_with_times(data)
    dropped: list[Finding] = []
    if isinstance(dataset.inputs, pd.DataFrame):
        media = [m.column for m in (data.image, data.text) if m is not None]
        keep = [*data.keep, *data.schema_.categorical, *media]
        dropped = identifier_columns(dataset.inputs, keep=keep)
        for finding in dropped:
            log.warning(
                "%s: column %r is not a feature: %s (keep it with data.keep: [%s])",
                data.source,
                finding.column,
                finding.reason,
                finding.column,
            )
        if dropped:
            inputs = dataset.inputs.drop(columns=[f.column for f in dropped])
            dataset = Dataset(inputs, dataset.target, dataset.groups, dataset.origin)
    labeled_only, times = _labeled_rows(data, dataset, times)
    usable, times = _readable_images(data, labeled_only, times)
    return ProjectData(usable, times, dropped)


def _load_with_times(data: DataConfig) -> tuple[Dataset, pd.Series | None]:
    """The source's features and labels, and ``data.split.by``'s column apart (the file
    read once either way)."""
    image = data.image.column if data.image is not None else None
    if data.split.by is None:
        drop = data.schema_.drop
        loaded = load_source(data.source, data.target, group=data.group, drop=drop, image=image)
        return loaded, None
    frame = load_frame(data.source, image=image, target=data.target)
    if data.split.by not in frame.columns:
        raise DataError(
            f"data.split.by names {data.split.by!r}, a column {data.source} lacks; its "
            f"columns are {list(frame.columns)[:20]}"
        )
    drop = [*data.schema_.drop, data.split.by]
    dataset = split_columns(
        frame, data.source, data.target, group=data.group, drop=drop, require_target=True
    )
    return dataset, frame[data.split.by].reset_index(drop=True)


def _labeled_rows(
    data: DataConfig, dataset: Dataset, times: pd.Series | None
) -> tuple[Dataset, pd.Series | None]:
    if dataset.target is None or not dataset.target.isna().any():
        return dataset, times
    labeled = np.flatnonzero(dataset.target.notna().to_numpy())
    log.warning(
        "%s: %d of %d rows have no %r label; training uses the other %d",
        data.source,
        len(dataset) - len(labeled),
        len(dataset),
        data.target,
        len(labeled),
    )
    return _rows(dataset, times, labeled)


def _readable_images(
    data: DataConfig, dataset: Dataset, times: pd.Series | None
) -> tuple[Dataset, pd.Series | None]:
    """The rows whose image decodes as serving decodes it; the others are left out with a
    warning that names them (``data.image.unreadable: skip``) or stop training (``fail``)."""
    image = data.image
    if image is None or not isinstance(dataset.inputs, pd.DataFrame):
        return dataset, times
    from dnnops.data.media.validate import image_problems

    problems = image_problems(list(dataset.inputs[image.column]), max_pixels=image.max_pixels)
    if not problems:
        return dataset, times
    bad = sorted({row for found in problems.values() for row, _ in found})
    named = "; ".join(
        f"{rule}: {len(found)} ({', '.join(shown for _, shown in found[:3])})"
        for rule, found in sorted(problems.items())
    )
    if image.unreadable == "fail":
        raise DataError(
            f"{data.source}: {len(bad)} of {len(dataset)} images cannot be used: {named}; "
            "remove or fix them, or leave them out with data.image.unreadable: skip"
        )
    log.warning(
        "%s: %d of %d images cannot be used and are left out of training: %s",
        data.source,
        len(bad),
        len(dataset),
        named,
    )
    return _rows(dataset, times, np.setdiff1d(np.arange(len(dataset)), bad))


def _rows(
    dataset: Dataset, times: pd.Series | None, rows: np.ndarray
) -> tuple[Dataset, pd.Series | None]:
    """The dataset's ``rows`` (and their times), renumbered from 0."""
    taken = dataset.take(rows)
    kept = Dataset(
        taken.inputs.reset_index(drop=True)
        if isinstance(taken.inputs, pd.DataFrame)
        else taken.inputs,
        taken.target.reset_index(drop=True) if taken.target is not None else None,
        taken.groups.reset_index(drop=True) if taken.groups is not None else None,
        taken.origin,
    )
    return kept, None if times is None else times.iloc[rows].reset_index(drop=True)


def prepare_data(
    data: DataConfig,
    model: ModelConfig,
    task: Literal["classification", "regression"] = "classification",
) -> PreparedData:
    """Load, describe, split and transform the project's data source."""
    loaded = load_project_data(data)
    dataset = loaded.dataset
    ignored = [c for c in (data.group, *data.schema_.drop, data.split.by) if c is not None]
    ignored += loaded.ignored
    schema = infer_schema(
        dataset,
        categorical=data.schema_.categorical,
        range_tolerance=data.schema_.range_tolerance,
        target_name=data.target,
        ignored=ignored,
        task=task,
        sensitive=data.schema_.sensitive,
        image=data.image.column if data.image is not None else None,
        text=data.text.column if data.text is not None else None,
    )
    stratify_by = dataset.target if task == "classification" else None
    split = split_indices(len(dataset), data.split, stratify_by, times=loaded.times)
    train_part = dataset.take(split.train)
    leaks = (
        [] if schema.medium else _leaks(train_part, dataset.take(split.valid), task == "regression")
    )
    for leak in leaks:
        log.warning("%s: %s", data.source, leak.message())
    pre = fit_preprocessor(
        train_part,
        schema,
        data.preprocessing,
        input_shape=model.input_shape,
        media=data.image or data.text,
    )
    train = to_arrays(train_part, pre, schema)
    described = describe_inputs(pre, train_part.inputs, train.x) if schema.medium else None
    descriptors = None if described is None else pd.DataFrame(described)
    return PreparedData(
        dataset=dataset,
        schema=schema,
        preprocessor=pre,
        profile=build_profile(train_part, schema, descriptors),
        dropped=loaded.dropped,
        leaks=leaks,
        fingerprint=fingerprint(dataset),
        split=split,
        train=train,
        valid=to_arrays(dataset.take(split.valid), pre, schema),
        test=to_arrays(dataset.take(split.test), pre, schema),
    )


def _leaks(train: Dataset, valid: Dataset, regression: bool) -> list[Leak]:
    if not isinstance(train.inputs, pd.DataFrame) or train.target is None:
        return []
    if not isinstance(valid.inputs, pd.DataFrame) or valid.target is None or not len(valid):
        return []
    return single_feature_leaks(
        Labeled(train.inputs, train.target),
        Labeled(valid.inputs, valid.target),
        regression=regression,
    )


def to_arrays(dataset: Dataset, pre: Preprocessor, schema: Schema) -> Arrays:
    """Preprocessed inputs and labels as class indices in ``schema.target.classes`` order."""
    x = apply_preprocessing(pre, dataset.inputs)
    return Arrays(x=x, y=label_indices(dataset.target, schema))


def label_indices(labels: pd.Series | None, schema: Schema) -> np.ndarray:
    """Class indices (classification) or the target's numbers as float32 (regression)."""
    if labels is None or schema.target is None:
        return np.zeros(0, dtype="int64")
    if schema.target.is_regression:
        return pd.to_numeric(labels).to_numpy(dtype="float32")
    index = {category_key(c): i for i, c in enumerate(schema.target.classes)}
    return np.array([index[category_key(v)] for v in labels.to_numpy(dtype=object)], dtype="int64")


def save_data_artifacts(prepared: PreparedData, folder: Path) -> None:
    """Write schema.json, preprocessing.json and profile.json: what serving and drift need."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, model in (
        ("schema.json", prepared.schema),
        ("preprocessing.json", prepared.preprocessor),
        ("profile.json", prepared.profile),
    ):
        (folder / name).write_text(model.model_dump_json(indent=2), encoding="utf-8")


def load_schema(path: Path) -> Schema:
    return Schema.model_validate(json.loads(path.read_text(encoding="utf-8")))
