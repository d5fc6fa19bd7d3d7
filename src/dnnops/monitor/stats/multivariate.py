"""Multivariate drift by PCA reconstruction error (as NannyML does it).

Fitted on the reference, a PCA keeps the directions that explain most of its variance.
Rows from the same joint distribution reconstruct about as well as the reference did;
when the correlation between features changes (even with every marginal unchanged), rows
leave that subspace and their reconstruction error rises.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from dnnops.data.pca import PcaProfile, reconstruction_errors

LEGACY_ERROR_RATIO = 1.2
"""Profiles without the reference error's spread: drift at 20% above the reference mean."""
ALPHA = 0.001
MIN_RATIO = 1.05


MAX_TEST_ROWS = 100_000


@dataclass(frozen=True)
class MultivariateDrift:
    method: str
    score: float
    """Current mean reconstruction error / the reference's."""
    threshold: float
    """The ratio the score must reach (with a significant p-value) to count as drift."""
    drifted: bool
    components: int
    p_value: float | None = None
    """One-sided z-test of the current mean error against the reference's (None for
    profiles without the reference's spread)."""
    rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def multivariate_drift(
    profile: PcaProfile,
    current: pd.DataFrame,
    *,
    alpha: float = ALPHA,
    min_ratio: float = MIN_RATIO,
) -> MultivariateDrift | None:
    if not set(profile.features) <= set(current.columns) or len(current) == 0:
        return None
    sampled = current
    if len(current) > MAX_TEST_ROWS:  # the mean error of 100k rows is as good as of millions
        sampled = current.sample(MAX_TEST_ROWS, random_state=0)
    rows = sampled[profile.features].to_numpy(dtype="float64", na_value=np.nan)
    error_mean = float(reconstruction_errors(profile, rows).mean())
    return ratio_drift(profile, error_mean, len(rows), alpha=alpha, min_ratio=min_ratio)


def ratio_drift(
    profile: PcaProfile,
    error_mean: float,
    rows: int,
    *,
    alpha: float = ALPHA,
    min_ratio: float = MIN_RATIO,
) -> MultivariateDrift:
    """The verdict on a current mean reconstruction error over ``rows`` rows (however it
    was gathered): significant at ``alpha`` and at least ``min_ratio`` times the
    reference's, so neither noise in a few hundred rows nor a negligible change in
    millions decides."""
    ratio = error_mean / max(profile.reference_error, 1e-12)
    components = len(profile.components)
    spread = profile.reference_error_std
    if spread is None or spread <= 0 or rows < 2:
        drifted = ratio >= LEGACY_ERROR_RATIO
        return MultivariateDrift(
            "pca_reconstruction_error", ratio, LEGACY_ERROR_RATIO, drifted, components, None, rows
        )
    # two samples: the current mean's noise and the reference mean's (its held-out rows)
    reference_rows = profile.reference_rows or rows
    z = (error_mean - profile.reference_error) / (spread * math.sqrt(1 / rows + 1 / reference_rows))
    p_value = 0.5 * math.erfc(z / math.sqrt(2))
    drifted = p_value < alpha and ratio >= min_ratio
    return MultivariateDrift(
        "pca_reconstruction_error", ratio, min_ratio, drifted, components, p_value, rows
    )
