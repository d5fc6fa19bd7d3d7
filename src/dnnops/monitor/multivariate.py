"""Multivariate drift by PCA reconstruction error (as NannyML does it).

Fitted on the reference, a PCA keeps the directions that explain most of its variance.
Rows from the same joint distribution reconstruct about as well as the reference did;
when the correlation between features changes (even with every marginal unchanged), rows
leave that subspace and their reconstruction error rises.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from dnnops.data.pca import PcaProfile, reconstruction_errors

DEFAULT_ERROR_RATIO = 1.2
"""Drift when the current mean reconstruction error is 20% above the reference's."""


MAX_TEST_ROWS = 100_000


@dataclass(frozen=True)
class MultivariateDrift:
    method: str
    score: float
    """Current mean reconstruction error / the reference's."""
    threshold: float
    drifted: bool
    components: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def multivariate_drift(
    profile: PcaProfile, current: pd.DataFrame, threshold: float = DEFAULT_ERROR_RATIO
) -> MultivariateDrift | None:
    if not set(profile.features) <= set(current.columns) or len(current) == 0:
        return None
    sampled = current
    if len(current) > MAX_TEST_ROWS:  # the mean error of 100k rows is as good as of millions
        sampled = current.sample(MAX_TEST_ROWS, random_state=0)
    rows = sampled[profile.features].to_numpy(dtype="float64", na_value=np.nan)
    return ratio_drift(profile, float(reconstruction_errors(profile, rows).mean()), threshold)


def ratio_drift(
    profile: PcaProfile, error_mean: float, threshold: float = DEFAULT_ERROR_RATIO
) -> MultivariateDrift:
    """The verdict on a current mean reconstruction error (however it was gathered)."""
    ratio = error_mean / max(profile.reference_error, 1e-12)
    return MultivariateDrift(
        "pca_reconstruction_error", ratio, threshold, ratio >= threshold, len(profile.components)
    )
