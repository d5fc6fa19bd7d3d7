"""A PCA of the reference's numeric features, kept with the reference profile so that
monitoring can test the joint distribution (see ``dnnops.monitor.stats.multivariate``)."""

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
    reference_error_std: float | None = None
    """Their standard deviation: what a significance test of a current mean needs (None in
    profiles made before dnnops measured it: those are judged by a fixed ratio)."""
    reference_rows: int = 0
    """Rows the reference error was measured on: held out from the fit, since rows the PCA
    was fitted on reconstruct better than any new row would."""


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
    held_out = data
    if len(data) >= 400:  # a quarter, drawn at random (files are often sorted by class)
        order = np.random.default_rng(seed).permutation(len(data))
        held_out, data = data[order[: len(data) // 4]], data[order[len(data) // 4 :]]
    mean, scale = np.nanmean(data, axis=0), np.nanstd(data, axis=0)
    scale = np.where(scale > 0, scale, 1.0)
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
    errors = reconstruction_errors(profile, held_out)
    return profile.model_copy(
        update={
            "reference_error": float(errors.mean()),
            "reference_error_std": float(errors.std()),
            "reference_rows": len(held_out),
        }
    )


def reconstruction_errors(profile: PcaProfile, rows: np.ndarray) -> np.ndarray:
    """Euclidean distance between each standardized row and its projection, shape (N,)."""
    standardized = np.nan_to_num((rows - np.asarray(profile.mean)) / np.asarray(profile.scale))
    components = np.asarray(profile.components)
    # residual = x - x P with P = C^T C: one (N, d) x (d, d) product instead of two
    residual = standardized - standardized @ (components.T @ components)
    errors: np.ndarray = np.sqrt(np.einsum("ij,ij->i", residual, residual))
    return errors
