"""What embedding drift is tested against: the model's own view of its held-out rows.

An image or text model's penultimate layer is where a change the descriptors miss (a new
kind of photo, a topic it never saw) shows first. At registration its penultimate features
are reduced by a PCA fitted on the training split (the projection is baked into the
served graph, so each answer carries a short embedding), and the held-out rows'
embeddings are summarized here as the mean of their random Fourier features: an RBF
kernel's mean embedding (Rahimi and Recht, 2007). The squared distance between two such
means is the kernel's MMD, and means add up, so a minute's digest keeps one sum and a
window's test merges minutes instead of keeping embeddings.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict

EMBEDDING_DIMS = 16
"""Principal components the served graph answers: enough for a kernel test's power
(alibi-detect reduces to 32 before its MMD), small enough to log with every prediction."""
FOURIER_FEATURES = 256
"""Enough that the test finds what the exact MMD finds (on a ResNet's digit embeddings with a
new class: 33 of 60 windows, averaged over feature draws, against 32 for a permutation
test; 128 features: 28); few enough for a minute's digest (a sum each)."""
MAX_FIT_ROWS = 5000
SAMPLE_ROWS = 200


class EmbeddingProjection(BaseModel):
    """Penultimate features -> embeddings: ``(h - mean) @ components.T``."""

    model_config = ConfigDict(frozen=True)
    mean: list[float]
    components: list[list[float]]
    """(k, d): the principal directions of the training split's penultimate features."""


class EmbeddingProfile(BaseModel):
    """The held-out rows' embeddings as an RBF kernel sees them, and a sample of them."""

    model_config = ConfigDict(frozen=True)
    dims: int
    bandwidth: float
    """The kernel's length scale: the median distance between reference embeddings over
    sqrt(2)."""
    frequencies: list[list[float]]
    """(dims, features): the Fourier features' directions, drawn once and stored (a
    generator's stream may change between numpy versions)."""
    phases: list[float]
    reference_mean: list[float]
    """Mean Fourier features of the reference rows."""
    trace: float
    """tr(C) and tr(C^2) of their covariance C: the moments of the test's null."""
    trace_squared: float
    rows: int
    """Reference rows the mean and the covariance are measured on."""
    sample: list[list[float]]
    """Up to 200 reference embeddings, as they are (for the dashboard and comparisons)."""


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


def fit_embedding_profile(embeddings: np.ndarray, seed: int = 0) -> EmbeddingProfile:
    """The reference of held-out ``embeddings`` (rows x dims)."""
    data = np.asarray(embeddings, dtype="float64")
    rng = np.random.default_rng(seed)
    bandwidth = median_distance(data, rng)
    dims = data.shape[1]
    frequencies = rng.standard_normal((dims, FOURIER_FEATURES)) / bandwidth
    phases = rng.uniform(0.0, 2 * np.pi, FOURIER_FEATURES)
    features = _fourier(data, frequencies, phases)
    covariance = np.cov(features, rowvar=False) if len(data) > 1 else np.zeros((1, 1))
    sample = data if len(data) <= SAMPLE_ROWS else data[rng.choice(len(data), SAMPLE_ROWS, False)]
    return EmbeddingProfile(
        dims=dims,
        bandwidth=bandwidth,
        frequencies=frequencies.tolist(),
        phases=phases.tolist(),
        reference_mean=features.mean(axis=0).tolist(),
        trace=float(np.trace(covariance)),
        trace_squared=float(np.sum(covariance * covariance)),
        rows=len(data),
        sample=np.round(sample, 5).tolist(),
    )


def fourier_features(profile: EmbeddingProfile, embeddings: np.ndarray) -> np.ndarray:
    """Each embedding's random Fourier features (rows x ``FOURIER_FEATURES``)."""
    return _fourier(
        np.asarray(embeddings, dtype="float64"),
        np.asarray(profile.frequencies),
        np.asarray(profile.phases),
    )


def _fourier(data: np.ndarray, frequencies: np.ndarray, phases: np.ndarray) -> np.ndarray:
    scale = np.sqrt(2.0 / frequencies.shape[1])
    features: np.ndarray = scale * np.cos(data @ frequencies + phases)
    return features


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
