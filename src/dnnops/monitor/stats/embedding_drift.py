"""Embedding drift: a kernel two-sample test (MMD) of live embeddings against the reference.

The statistic is the unbiased squared MMD of an RBF kernel (the bandwidth the reference
chose: its median distance over sqrt(2), alibi-detect's convention) between the window's
sample of embeddings (``embedding_sample``) and the version's reference embeddings, and its
null is read from ``PERMUTATIONS`` relabellings of the pooled rows, the test alibi-detect's
``MMDDrift`` runs. Every permutation's statistic comes out of one matrix product with the
pooled kernel matrix, and the permutations are drawn from a fixed seed, so a window gets
the same verdict in every report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from dnnops.data.embedding_profile import EmbeddingProfile

PERMUTATIONS = 200
"""Relabellings the null is read from: the smallest p-value is 1/201, under the default
significance (``monitor.drift.embedding_alpha``, 0.01)."""
MIN_ROWS = 10
"""Live embeddings a window needs before it is judged."""


@dataclass(frozen=True)
class EmbeddingDrift:
    method: str
    mmd2: float
    """The squared MMD between the live and the reference embeddings (RBF kernel)."""
    p_value: float
    alpha: float
    drifted: bool
    rows: int
    """Live embeddings the window logged."""
    tested_rows: int
    """Of them, the uniform sample the test ran on."""
    reference_rows: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def embedding_drift(
    profile: EmbeddingProfile, live: list[list[float]], rows: int, *, alpha: float
) -> EmbeddingDrift | None:
    """The verdict on a sample ``live`` of a window's ``rows`` embeddings; None under
    ``MIN_ROWS``, or with embeddings of another width (another version's)."""
    sample = np.asarray(live, dtype="float64").reshape(len(live), -1)
    reference = np.asarray(profile.sample, dtype="float64")
    if len(sample) < MIN_ROWS or sample.shape[1] != profile.dims or len(reference) < 2:
        return None
    mmd2, p_value = permutation_test(sample, reference, profile.bandwidth)
    return EmbeddingDrift(
        method="mmd_permutation",
        mmd2=mmd2,
        p_value=p_value,
        alpha=alpha,
        drifted=p_value < alpha,
        rows=rows,
        tested_rows=len(sample),
        reference_rows=len(reference),
    )


def permutation_test(
    x: np.ndarray, y: np.ndarray, bandwidth: float, *, permutations: int = PERMUTATIONS
) -> tuple[float, float]:
    """(unbiased MMD^2 of ``x`` against ``y``, its permutation p-value)."""
    kernel = rbf_kernel(np.concatenate([x, y]), bandwidth)
    np.fill_diagonal(kernel, 0.0)  # the unbiased estimate leaves out each row with itself
    labels = relabellings(len(x), len(y), permutations)
    statistics = _unbiased_mmd2(kernel, labels, sizes=(len(x), len(y)))
    observed = float(statistics[0])
    p_value = float((1 + np.sum(statistics[1:] >= observed)) / (permutations + 1))
    return observed, p_value


def rbf_kernel(rows: np.ndarray, bandwidth: float) -> np.ndarray:
    """``exp(-|a - b|^2 / (2 bandwidth^2))`` between every two rows, in float32 (the test
    compares sums of it; float32 halves the time of the matrix products)."""
    pooled = np.asarray(rows, dtype=np.float32)
    squares = np.einsum("ij,ij->i", pooled, pooled)
    kernel: np.ndarray = pooled @ pooled.T
    kernel *= -2.0
    kernel += squares[:, None]
    kernel += squares[None, :]
    np.maximum(kernel, 0.0, out=kernel)
    kernel *= np.float32(-1.0 / (2.0 * bandwidth * bandwidth))
    np.exp(kernel, out=kernel)
    return kernel


@lru_cache(maxsize=8)
def relabellings(n: int, m: int, permutations: int) -> np.ndarray:
    """(n + m, 1 + permutations) float32: column 0 the observed labelling (1 for x's rows),
    then ``permutations`` relabellings drawn from a fixed seed. Windows of one size share
    them (a report judges many), so they are drawn once per size."""
    rng = np.random.default_rng(0)
    labels = np.zeros((n + m, permutations + 1), dtype=np.float32)
    labels[:n, 0] = 1.0
    for column in range(1, permutations + 1):
        labels[rng.permutation(n + m)[:n], column] = 1.0
    labels.setflags(write=False)
    return labels


def _unbiased_mmd2(kernel: np.ndarray, as_x: np.ndarray, *, sizes: tuple[int, int]) -> np.ndarray:
    """The statistic of each labelling (a column of ``as_x``: 1 for the rows called x),
    from the kernel's sums within x, within y and across: one matrix product in all."""
    n, m = sizes
    to_x = (kernel @ as_x).astype("float64")  # each row's kernel sum over the rows called x
    to_y = kernel.sum(axis=1, dtype="float64")[:, None] - to_x
    in_x = as_x.astype("float64")
    within_x = np.sum(in_x * to_x, axis=0)
    across = np.sum((1.0 - in_x) * to_x, axis=0)
    within_y = np.sum((1.0 - in_x) * to_y, axis=0)
    result: np.ndarray = (
        within_x / (n * (n - 1)) + within_y / (m * (m - 1)) - 2.0 * across / (n * m)
    )
    return result
