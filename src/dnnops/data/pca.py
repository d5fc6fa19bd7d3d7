"""A PCA of the reference's numeric features, kept with the reference profile so that
monitoring can test the joint distribution (see ``dnnops.monitor.multivariate``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

EXPLAINED_VARIANCE = 0.9
MAX_COMPONENTS = 32
MAX_FIT_ROWS = 5000


class PcaProfile(BaseModel):
    model_config = ConfigDict(frozen=True)
    features: list[str]
    mean: list[float]
    scale: list[float]
    components: list[list[float]]
    """(k, d): the principal directions kept."""
    reference_error: float
    """Mean reconstruction error of the reference rows."""


def fit_pca_profile(frame: pd.DataFrame, seed: int = 0) -> PcaProfile | None:
    """A PCA of the numeric columns; None when fewer than two are usable."""
    numeric = [
        c
        for c in frame.columns
        if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    ]
    if len(frame) > MAX_FIT_ROWS:  # sample rows before copying them into one matrix
        frame = frame.sample(MAX_FIT_ROWS, random_state=seed)
    data = frame[numeric].to_numpy(dtype="float64", na_value=np.nan)
    keep = [i for i in range(data.shape[1]) if np.nanstd(data[:, i]) > 0] if len(data) else []
    if len(keep) < 2 or len(data) < 10:
        return None
    data = data[:, keep]
    mean, scale = np.nanmean(data, axis=0), np.nanstd(data, axis=0)
    standardized = np.nan_to_num((data - mean) / scale)
    _, singular, vt = np.linalg.svd(standardized, full_matrices=False)
    explained = np.cumsum(singular**2) / np.sum(singular**2)
    needed = int(np.searchsorted(explained, EXPLAINED_VARIANCE)) + 1
    k = min(needed, MAX_COMPONENTS, len(keep) - 1)
    components = vt[:k]
    profile = PcaProfile(
        features=[str(numeric[i]) for i in keep],
        mean=mean.tolist(),
        scale=scale.tolist(),
        components=components.tolist(),
        reference_error=0.0,
    )
    return profile.model_copy(
        update={"reference_error": float(reconstruction_errors(profile, data).mean())}
    )


def reconstruction_errors(profile: PcaProfile, rows: np.ndarray) -> np.ndarray:
    """Euclidean distance between each standardized row and its projection, shape (N,)."""
    standardized = np.nan_to_num((rows - np.asarray(profile.mean)) / np.asarray(profile.scale))
    components = np.asarray(profile.components)
    # residual = x - x P with P = C^T C: one (N, d) x (d, d) product instead of two
    residual = standardized - standardized @ (components.T @ components)
    errors: np.ndarray = np.sqrt(np.einsum("ij,ij->i", residual, residual))
    return errors
