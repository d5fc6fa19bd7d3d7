"""Prediction ids as 64-bit hashes: how a report matches labels with predictions in numpy."""

from __future__ import annotations

import numpy as np


def id_hashes(ids: np.ndarray) -> np.ndarray:
    """A 64-bit polynomial hash of each string's code points (the padding of numpy's
    fixed-width strings adds nothing, so equal ids hash equal at any width)."""
    if ids.dtype.kind != "U":
        ids = ids.astype(str)
    width = ids.dtype.itemsize // 4
    if width == 0 or not len(ids):
        return np.zeros(len(ids), dtype=np.uint64)
    points = ids.view(np.uint32).reshape(len(ids), width).astype(np.uint64)
    powers = np.full(width, 1_000_003, dtype=np.uint64) ** np.arange(width, dtype=np.uint64)
    with np.errstate(over="ignore"):
        hashes: np.ndarray = (points * powers).sum(axis=1, dtype=np.uint64)
    return hashes
