"""Embedding drift: a kernel two-sample test (MMD) of live embeddings against the reference.

With random Fourier features phi, the RBF kernel's MMD^2 between two samples is
``||mean phi(live) - mean phi(reference)||^2``. Under no change, that difference of means
has covariance ``C (1/n + 1/m)`` (C the features' covariance, n live and m reference rows),
so ``T = MMD^2 / (1/n + 1/m)`` is a weighted sum of chi-squares, whose tail is read from a
gamma with the same mean ``tr C`` and variance ``2 tr C^2`` (the approximation Gretton et
al. use for the MMD's null). The test needs only the live features' sum: it runs on
digests merged over any window, in microseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from dnnops.data.embedding_profile import EmbeddingProfile


@dataclass(frozen=True)
class EmbeddingDrift:
    method: str
    mmd2: float
    """The squared MMD between the live and the reference embeddings (RBF kernel)."""
    p_value: float
    alpha: float
    drifted: bool
    rows: int
    reference_rows: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def embedding_drift(
    profile: EmbeddingProfile, feature_sum: Sequence[float], rows: int, *, alpha: float
) -> EmbeddingDrift | None:
    """The verdict on ``rows`` live embeddings whose Fourier features sum to
    ``feature_sum``; None with no rows, or a sum of another length (another version's)."""
    if rows <= 0 or len(feature_sum) != len(profile.reference_mean):
        return None
    difference = np.asarray(feature_sum, dtype="float64") / rows - np.asarray(
        profile.reference_mean
    )
    mmd2 = float(difference @ difference)
    p_value = null_tail(mmd2 / (1.0 / rows + 1.0 / max(profile.rows, 1)), profile)
    return EmbeddingDrift(
        method="mmd_rff",
        mmd2=mmd2,
        p_value=p_value,
        alpha=alpha,
        drifted=p_value < alpha,
        rows=rows,
        reference_rows=profile.rows,
    )


def null_tail(statistic: float, profile: EmbeddingProfile) -> float:
    """P(T >= statistic) under no change: a gamma matching the null's two moments."""
    mean, variance = profile.trace, 2.0 * profile.trace_squared
    if mean <= 0 or variance <= 0:  # the reference rows coincide: any difference is a change
        return 0.0 if statistic > 0 else 1.0
    shape, scale = mean * mean / variance, variance / mean
    return float(stats.gamma.sf(statistic, shape, scale=scale))
