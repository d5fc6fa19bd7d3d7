"""A deterministic train/valid/test split: the same seed gives the same rows, always."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dnnops.config import SplitConfig


@dataclass(frozen=True)
class Split:
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray


def split_indices(n_rows: int, config: SplitConfig, labels: pd.Series | None = None) -> Split:
    """Positional indices for each part; stratified on ``labels`` when every class can be."""
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
