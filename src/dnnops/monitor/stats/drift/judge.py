"""One feature's drift verdict: its evidence built from values or from counts, scored by
the method the config names (``DRIFT_METHODS``), held to the threshold."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dnnops.data.profile import FeatureProfile
from dnnops.monitor.stats.drift.method import (
    CategoryEvidence,
    DriftMethod,
    NumericEvidence,
    resolve,
)
from dnnops.monitor.stats.drift.scores import (
    bin_counts,
    category_counts,
    category_union,
    decile_counts,
    percentile_counts,
    shares,
)
from dnnops.plugins import DRIFT_METHODS


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    method: str
    score: float
    threshold: float
    drifted: bool
    reference: list[float] = field(default_factory=list)
    """Share of reference rows per bin (or category), for the histogram comparison."""
    current: list[float] = field(default_factory=list)
    bins: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_method(profile: FeatureProfile) -> str:
    """The method ``auto`` picks for this feature (``method.AUTO``)."""
    return resolve("numeric" if profile.kind == "numeric" else "category", "auto").name


def feature_drift(
    profile: FeatureProfile,
    values: np.ndarray,
    method: str = "auto",
    *,
    threshold: float | None = None,
) -> FeatureDrift:
    """Drift of one feature's current ``values`` from its reference profile."""
    if profile.kind == "category":  # categories are judged on their counts either way
        counts = category_counts(pd.Series(values))
        return drift_from_counts(profile, counts, method, threshold=threshold)
    values = np.asarray(values, dtype="float64")
    percentiles, edges = profile.percentiles or [0.0, 0.0], profile.bin_edges or []
    fine = percentile_counts(percentiles, values)
    deciles = decile_counts(percentiles, edges, fine)
    current = deciles if deciles is not None else bin_counts(edges, values)
    evidence = _numeric(profile, fine, current.astype("float64"), values=values)
    return _judge(profile.name, resolve("numeric", method), evidence, threshold=threshold)


def drift_from_counts(
    profile: FeatureProfile,
    counts: Sequence[int] | Mapping[str, int],
    method: str = "auto",
    *,
    threshold: float | None = None,
) -> FeatureDrift:
    """Drift from counts kept instead of values: per category, or for a number over the
    reference's percentile points (``percentile_counts``). KS and Wasserstein are then read
    off the two CDFs on those 101 points, so they resolve 1% of the reference's mass."""
    if isinstance(counts, Mapping):
        names, reference, current = category_union(profile.frequencies or {}, counts)
        evidence = CategoryEvidence(names, reference, current, method == "auto")
        return _judge(profile.name, resolve("category", method), evidence, threshold=threshold)
    chosen = resolve("numeric", method)
    fine = np.asarray(counts, dtype="float64")
    percentiles, edges = profile.percentiles or [0.0, 0.0], profile.bin_edges or []
    deciles = decile_counts(percentiles, edges, fine)
    if deciles is None:  # a profile binned on other edges: judged on the percentiles alone
        chosen = DRIFT_METHODS.get("ks_wasserstein") if chosen.name == "psi" else chosen
        deciles = np.zeros(len(edges) + 1)
    return _judge(profile.name, chosen, _numeric(profile, fine, deciles), threshold=threshold)


def _numeric(
    profile: FeatureProfile,
    fine: np.ndarray,
    current: np.ndarray,
    *,
    values: np.ndarray | None = None,
) -> NumericEvidence:
    reference = np.asarray(profile.bin_counts or [0], dtype="float64")
    return NumericEvidence(profile, fine, reference, current, values)


def _judge(
    feature: str,
    method: DriftMethod,
    evidence: NumericEvidence | CategoryEvidence,
    *,
    threshold: float | None,
) -> FeatureDrift:
    limit = method.default_threshold if threshold is None else threshold
    if isinstance(evidence, NumericEvidence):
        assert method.numeric is not None  # resolve() picked one that applies
        score = method.numeric(evidence)
        reference, current = evidence.reference_bins, evidence.current_bins
        bins = _bin_labels(evidence.profile.bin_edges or [])
    else:
        assert method.category is not None
        score = method.category(evidence)
        reference, current, bins = evidence.reference, evidence.current, evidence.names
    return FeatureDrift(
        feature,
        method.name,
        score.value,
        limit,
        score.significant and method.drifted(score.value, limit),
        list(shares(reference)),
        list(shares(current)),
        bins,
    )


def _bin_labels(edges: list[float]) -> list[str]:
    labels = [f"<{edges[0]:.3g}"] if edges else ["all"]
    labels += [f"{a:.3g}..{b:.3g}" for a, b in itertools.pairwise(edges)]
    return labels + ([f">={edges[-1]:.3g}"] if edges else [])
