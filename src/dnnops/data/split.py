"""A deterministic train/valid/test split: the same seed gives the same rows, always."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dnnops.config import SplitConfig
from dnnops.errors import DataError


@dataclass(frozen=True)
class Split:
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray


def split_indices(
    n_rows: int,
    config: SplitConfig,
    labels: pd.Series | None = None,
    *,
    times: pd.Series | None = None,
) -> Split:
    """Positional indices for each part; by ``times`` (oldest rows train, newest test)
    when given, else shuffled and stratified on ``labels`` when every class can be."""
    if times is not None:
        return _by_time(times, config)
    if config.folds is not None:
        return _fold(n_rows, config, labels)
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(n_rows)
    if config.stratify and labels is not None and _can_stratify(labels, config):
        return _stratified(order, labels.to_numpy(), config)
    n_test = max(1, round(n_rows * config.test))
    n_valid = max(1, round(n_rows * config.valid))
    return Split(
        train=np.sort(order[n_test + n_valid :]),
        valid=np.sort(order[n_test : n_test + n_valid]),
        test=np.sort(order[:n_test]),
    )


def _can_stratify(labels: pd.Series, config: SplitConfig) -> bool:
    smallest = int(labels.value_counts().min())
    return smallest * min(config.valid, config.test) >= 1


def _stratified(order: np.ndarray, labels: np.ndarray, config: SplitConfig) -> Split:
    """Split each class in the shuffled order by the same fractions, then merge."""
    parts: dict[str, list[np.ndarray]] = {"train": [], "valid": [], "test": []}
    shuffled = labels[order]
    for value in pd.unique(shuffled):
        members = order[shuffled == value]
        n_test = max(1, round(len(members) * config.test))
        n_valid = max(1, round(len(members) * config.valid))
        parts["test"].append(members[:n_test])
        parts["valid"].append(members[n_test : n_test + n_valid])
        parts["train"].append(members[n_test + n_valid :])
    return Split(**{name: np.sort(np.concatenate(chunks)) for name, chunks in parts.items()})


def _by_time(times: pd.Series, config: SplitConfig) -> Split:
    """The oldest ``train`` share trains, the next ``valid`` share validates, the newest
    rows test: what a model meets in production, the future."""
    order = np.argsort(time_order(times, config.by or "time"), kind="stable")
    n_rows = len(order)
    n_test = max(1, round(n_rows * config.test))
    n_valid = max(1, round(n_rows * config.valid))
    n_train = n_rows - n_test - n_valid
    return Split(
        train=np.sort(order[:n_train]),
        valid=np.sort(order[n_train : n_train + n_valid]),
        test=np.sort(order[n_train + n_valid :]),
    )


def time_order(times: pd.Series, name: str) -> np.ndarray:
    """A sortable number per row: the values themselves, or dates parsed from text."""
    if pd.api.types.is_numeric_dtype(times) and not pd.api.types.is_bool_dtype(times):
        numbers = times.to_numpy(dtype="float64")
    else:
        parsed = pd.to_datetime(times, errors="coerce", utc=True, format="mixed")
        numbers = parsed.to_numpy(dtype="datetime64[ns]").astype("int64").astype("float64")
        numbers[parsed.isna().to_numpy()] = np.nan
    missing = int(np.isnan(numbers).sum())
    if missing:
        raise DataError(
            f"data.split.by: {missing} row(s) have no time in {name!r} (empty, or not a number "
            "or a date); fill them or drop those rows"
        )
    return numbers


def _fold(n_rows: int, config: SplitConfig, labels: pd.Series | None) -> Split:
    """Fold ``config.fold`` of ``config.folds`` tests; of the rest, a ``valid`` share
    (shuffled) validates. Rows are dealt to folds round-robin in shuffled order, class by
    class when ``labels`` are given, so every fold has each class's share."""
    folds = config.folds or 2
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(n_rows)
    assigned = np.empty(n_rows, dtype="int64")
    if labels is not None and config.stratify:
        values = labels.to_numpy()[order]
        dealt = 0
        for value in pd.unique(values):
            members = order[values == value]
            assigned[members] = (np.arange(len(members)) + dealt) % folds
            dealt += len(members)
    else:
        assigned[order] = np.arange(n_rows) % folds
    test = np.flatnonzero(assigned == config.fold)
    rest = rng.permutation(np.flatnonzero(assigned != config.fold))
    share = config.valid / (config.train + config.valid)
    n_valid = max(1, round(len(rest) * share))
    return Split(train=np.sort(rest[n_valid:]), valid=np.sort(rest[:n_valid]), test=test)
