"""What a model's outputs must be before anything answers from them: finite numbers.

A NaN or an infinity is the model failing. Argmax would answer it as the first class and
a regression would write NaN as a price; the server, batch prediction and the Python API
all refuse it here, with the same words and the rows named.
"""

from __future__ import annotations

import math

import numpy as np

from dnnops.errors import ModelError

SMALL_OUTPUT = 64
"""Outputs up to this many numbers are checked in Python, past it in numpy."""


class NonFiniteOutput(ModelError):
    """The model answered NaN or infinity for ``rows`` of ``count``: nothing was predicted."""

    def __init__(self, rows: list[int], count: int) -> None:
        self.rows = rows
        super().__init__(
            f"the model answered NaN or infinity for row(s) {rows[:10]} ({len(rows)} of "
            f"{count}); nothing was predicted"
        )


def refuse_non_finite(outputs: np.ndarray, *, first_row: int = 0) -> np.ndarray:
    """``outputs`` (N, ...) unchanged, or ``NonFiniteOutput`` naming the rows that hold a
    NaN or an infinity, numbered from ``first_row`` (a chunk's place in its file). One sum
    tells the common case (a third of the cost of a per-row check); only a sum that is not
    finite (a NaN, an infinity, or finite outputs large enough to overflow) looks per row.
    A few outputs (one instance's) are summed as Python floats: 0.3 us against numpy's 0.7."""
    total = (
        sum(outputs.ravel().tolist())
        if outputs.size <= SMALL_OUTPUT
        else np.add.reduce(outputs, axis=None)
    )
    if math.isfinite(float(total)):
        return outputs
    finite = np.isfinite(outputs).reshape(len(outputs), -1).all(axis=1)
    if finite.all():
        return outputs
    rows = (np.flatnonzero(~finite) + first_row).tolist()
    raise NonFiniteOutput(rows, len(outputs))
