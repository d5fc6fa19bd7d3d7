"""Drift of a whole dataset: every feature against its reference profile, and a verdict.

Used offline (``dnnops monitor drift REFERENCE CURRENT``) and on the inputs the server
logged. The dataset drifts when at least ``share`` of its features drift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from dnnops.config import DriftConfig
from dnnops.data.pca import fit_pca_profile
from dnnops.data.profile import FeatureProfile, Profile, profile_features, tensor_summaries
from dnnops.monitor.stats.drift import FeatureDrift, drift_from_counts, feature_drift
from dnnops.monitor.stats.embedding_drift import EmbeddingDrift
from dnnops.monitor.stats.multivariate import MultivariateDrift, multivariate_drift, ratio_drift
from dnnops.parallel import column_map


@dataclass(frozen=True)
class DatasetDrift:
    features: list[FeatureDrift]
    share: float
    """Share of features that drifted."""
    threshold: float
    drifted: bool
    rows: int
    skipped: list[str] = field(default_factory=list)
    """Reference features absent from the current data."""
    multivariate: MultivariateDrift | None = None
    too_few_rows: bool = False
    """Fewer rows than monitor.drift.min_rows: the scores are shown, nothing is a verdict."""
    embedding: EmbeddingDrift | None = None
    """An image or text model's embedding drift (MMD against its held-out rows')."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": [f.to_dict() for f in self.features],
            "share": self.share,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "rows": self.rows,
            "skipped": self.skipped,
            "multivariate": self.multivariate.to_dict() if self.multivariate else None,
            "too_few_rows": self.too_few_rows,
            "embedding": self.embedding.to_dict() if self.embedding else None,
        }


def dataset_drift(reference: Profile, current: pd.DataFrame, config: DriftConfig) -> DatasetDrift:
    """Each reference feature found in ``current`` is tested; the rest are listed as skipped."""
    skipped = [p.name for p in reference.features if p.name not in current.columns]
    present = [p for p in reference.features if p.name in current.columns]

    def one(profile: FeatureProfile) -> FeatureDrift:
        values = current[profile.name].to_numpy()
        if profile.kind == "numeric":
            values = pd.to_numeric(current[profile.name], errors="coerce").to_numpy(dtype="float64")
        return feature_drift(profile, values, config.method, threshold=config.threshold)

    results = column_map(one, present)  # one feature per thread
    joint = None
    if reference.pca is not None:
        joint = multivariate_drift(
            reference.pca,
            current,
            alpha=config.multivariate_alpha,
            min_ratio=config.multivariate_min_ratio,
        )
    return judged(results, joint, rows=len(current), skipped=skipped, config=config)


def judged(
    results: list[FeatureDrift],
    joint: MultivariateDrift | None,
    *,
    rows: int,
    skipped: list[str],
    config: DriftConfig,
    embedding: EmbeddingDrift | None = None,
) -> DatasetDrift:
    """The dataset's verdict: drifted when ``config.share`` of the features drift, or the
    multivariate test or the embedding test does, and only with at least
    ``config.min_rows`` rows behind it."""
    too_few = rows < config.min_rows
    if too_few:  # scores stay for reading; no feature is called drifted on so little
        results = [replace(r, drifted=False) for r in results]
        joint = replace(joint, drifted=False) if joint is not None else None
        embedding = replace(embedding, drifted=False) if embedding is not None else None
    share = sum(r.drifted for r in results) / len(results) if results else 0.0
    drifted = (
        (bool(results) and share >= config.share)
        or bool(joint and joint.drifted)
        or bool(embedding and embedding.drifted)
    )
    return DatasetDrift(
        results, share, config.share, drifted, rows, skipped, joint, too_few, embedding
    )


def dataset_drift_from_counts(
    reference: Profile,
    numeric: Mapping[str, Sequence[int]],
    categories: Mapping[str, Mapping[str, int]],
    *,
    pca_error_mean: float | None,
    pca_rows: int = 0,
    rows: int,
    config: DriftConfig,
    embedding: EmbeddingDrift | None = None,
) -> DatasetDrift:
    """``dataset_drift`` from counts merged out of digests instead of the rows themselves
    (and an image or text model's embedding test, run on its merged sums)."""
    results, skipped = [], []
    for profile in reference.features:
        counts = numeric.get(profile.name) if profile.kind == "numeric" else None
        found = counts if counts is not None else categories.get(profile.name)
        if found is None:
            skipped.append(profile.name)
            continue
        results.append(drift_from_counts(profile, found, config.method, threshold=config.threshold))
    joint = None
    if reference.pca is not None and pca_error_mean is not None:
        joint = ratio_drift(
            reference.pca,
            pca_error_mean,
            pca_rows,
            alpha=config.multivariate_alpha,
            min_ratio=config.multivariate_min_ratio,
        )
    return judged(results, joint, rows=rows, skipped=skipped, config=config, embedding=embedding)


def reference_from_frame(frame: pd.DataFrame) -> Profile:
    """A reference profile straight from a data file (strings and booleans are categories)."""
    categorical = {
        str(c)
        for c in frame.columns
        if not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])
    }
    numeric = frame[[c for c in frame.columns if str(c) not in categorical]]
    return Profile(
        rows=len(frame), features=profile_features(frame, categorical), pca=fit_pca_profile(numeric)
    )


def as_feature_frame(inputs: Any, feature_names: list[str], tensor: bool) -> pd.DataFrame:
    """Logged inputs (rows of numbers, or objects keyed by feature) as a frame to test."""
    if tensor:
        return tensor_summaries(np.asarray(inputs, dtype="float64"))
    if inputs and isinstance(inputs[0], dict):
        return pd.DataFrame(inputs)
    return pd.DataFrame(np.asarray(inputs, dtype="float64"), columns=feature_names)
