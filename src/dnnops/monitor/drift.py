"""Drift statistics as pure functions of a reference profile and current values.

The reference side is the profile stored with the model version (101 percentiles and
decile-bin counts per number, frequencies per category), so a drift check never rereads
the training data. Two kinds of score, as Evidently reports them:
  distances (PSI, Wasserstein / reference std, Jensen-Shannon): drift when >= threshold;
  p-values (Kolmogorov-Smirnov, chi-square): drift when < threshold.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

from dnnops.data.profile import FeatureProfile
from dnnops.data.schema import category_key

Method = Literal["psi", "ks", "wasserstein", "ks_wasserstein", "chi2", "jensen_shannon"]
DEFAULT_THRESHOLDS: dict[str, float] = {
    "ks_wasserstein": 0.05,  # W1 in reference stds, and the KS test must reject at KS_ALPHA
    "psi": 0.2,  # "significant shift" in credit-risk practice (Siddiqi 2006)
    "ks": 0.05,  # p-value
    "wasserstein": 0.1,  # in reference standard deviations, as Evidently normalises it
    "chi2": 0.05,  # p-value
    "jensen_shannon": 0.1,
}
P_VALUE_METHODS = ("ks", "chi2")
EPSILON = 1e-4
KS_ALPHA = 0.001
"""``ks_wasserstein``: the KS test must reject "same distribution" at this level (0.05
Bonferroni-corrected for 50 features) before the size of the shift is looked at."""


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


def psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Population stability index over the same bins: sum (c - r) * ln(c / r)."""
    r = _shares(reference_counts)
    c = _shares(current_counts)
    return float(np.sum((c - r) * np.log(c / r)))


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    shares = counts / total if total > 0 else np.full(len(counts), 1.0 / len(counts))
    clipped: np.ndarray = np.clip(shares, EPSILON, None)
    return clipped


def bin_counts(edges: list[float], values: np.ndarray) -> np.ndarray:
    """Counts on the reference's open-ended bins (inner ``edges``)."""
    finite = values[np.isfinite(values)]
    return np.bincount(np.searchsorted(edges, finite, side="right"), minlength=len(edges) + 1)


def ks_p_value(
    percentiles: list[float], reference_count: int, values: np.ndarray
) -> tuple[float, float]:
    """Two-sample KS statistic and asymptotic p-value, the reference given by its percentiles."""
    finite = np.sort(values[np.isfinite(values)])
    if len(finite) == 0:
        return 0.0, 1.0
    grid = np.union1d(np.asarray(percentiles), finite)
    reference_cdf = np.interp(
        grid, percentiles, np.linspace(0.0, 1.0, len(percentiles)), left=0.0, right=1.0
    )
    current_cdf = np.searchsorted(finite, grid, side="right") / len(finite)
    statistic = float(np.max(np.abs(reference_cdf - current_cdf)))
    effective = reference_count * len(finite) / (reference_count + len(finite))
    return statistic, float(stats.kstwobign.sf(statistic * math.sqrt(effective)))


def ks_wasserstein(
    percentiles: list[float], std: float, reference_count: int, values: np.ndarray
) -> tuple[float, float]:
    """(W1 in reference stds, KS p-value), both from the two CDFs on the reference's 101
    percentiles: one pass of the current values over 101 edges, no sort of the window.

    Significance alone flags negligible shifts in windows of millions of rows, size alone
    flags noise in windows of hundreds; ``ks_wasserstein`` needs both."""
    finite = values[np.isfinite(values)]
    edges = np.asarray(percentiles, dtype="float64")
    if len(finite) == 0 or len(edges) < 2:
        return 0.0, 1.0
    below = np.bincount(np.searchsorted(edges, finite, side="right"), minlength=len(edges) + 1)
    current_cdf = np.cumsum(below)[:-1] / len(finite)  # share <= each edge
    reference_cdf = np.linspace(0.0, 1.0, len(edges))
    gaps = np.abs(reference_cdf - current_cdf)
    statistic = float(gaps.max())
    effective = reference_count * len(finite) / (reference_count + len(finite))
    p_value = float(stats.kstwobign.sf(statistic * math.sqrt(effective)))
    distance = float(np.sum(gaps[:-1] * np.diff(edges)))
    return (distance / std if std > 0 else distance), p_value


def wasserstein_normalized(percentiles: list[float], std: float, values: np.ndarray) -> float:
    """W1 between the quantile functions, in reference standard deviations."""
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return 0.0
    current = np.percentile(finite, np.linspace(0.0, 100.0, len(percentiles)))
    distance = float(np.mean(np.abs(current - np.asarray(percentiles))))
    return distance / std if std > 0 else distance


def category_shares(
    frequencies: Mapping[str, int], values: np.ndarray
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Reference and current counts over the union of categories (reference order first).

    Values are counted first and only the distinct ones are turned into category keys:
    a million rows of five categories cost five key conversions, not a million."""
    current: dict[str, int] = {}
    for value, count in pd.Series(values).value_counts(dropna=True, sort=False).items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        key = category_key(value)
        current[key] = current.get(key, 0) + int(count)
    names = list(frequencies) + sorted(set(current) - set(frequencies))
    reference = np.array([frequencies.get(n, 0) for n in names], dtype="float64")
    return names, reference, np.array([current.get(n, 0) for n in names], dtype="float64")


def chi_square_p_value(reference: np.ndarray, current: np.ndarray) -> float:
    """Goodness of fit of the current counts to the reference proportions (smoothed)."""
    if current.sum() == 0:
        return 1.0
    expected = _shares(reference) * current.sum()
    expected *= current.sum() / expected.sum()
    return float(stats.chisquare(current, expected).pvalue)


def jensen_shannon_distance(reference: np.ndarray, current: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two count vectors."""
    if current.sum() == 0 or reference.sum() == 0:
        return 0.0
    return float(jensenshannon(reference / reference.sum(), current / current.sum(), base=2))


def default_method(profile: FeatureProfile) -> Method:
    return "psi" if profile.kind == "numeric" else "jensen_shannon"


def feature_drift(
    profile: FeatureProfile,
    values: np.ndarray,
    method: str = "auto",
    threshold: float | None = None,
) -> FeatureDrift:
    """Drift of one feature's current ``values`` from its reference profile."""
    chosen = default_method(profile) if method == "auto" else method
    if profile.kind == "category" and chosen in ("psi", "ks", "wasserstein", "ks_wasserstein"):
        chosen = "jensen_shannon"  # numeric tests do not apply to categories
    if profile.kind == "numeric" and chosen == "chi2":
        chosen = "psi"
    limit = threshold if threshold is not None else DEFAULT_THRESHOLDS[chosen]
    if profile.kind == "category":
        return _category_drift(profile, values, chosen, limit)
    return _numeric_drift(profile, np.asarray(values, dtype="float64"), chosen, limit)


def _numeric_drift(
    profile: FeatureProfile, values: np.ndarray, method: str, limit: float
) -> FeatureDrift:
    edges = profile.bin_edges or []
    reference_counts = np.asarray(profile.bin_counts or [0], dtype="float64")
    current_counts = bin_counts(edges, values).astype("float64")
    percentiles = profile.percentiles or [0.0, 0.0]
    significant = True
    if method == "psi":
        score = psi(reference_counts, current_counts)
    elif method == "ks_wasserstein":
        count = profile.count - profile.null_count
        score, p_value = ks_wasserstein(percentiles, profile.std or 0.0, count, values)
        significant = p_value < KS_ALPHA
    elif method == "ks":
        score = ks_p_value(percentiles, profile.count - profile.null_count, values)[1]
    else:
        score = wasserstein_normalized(percentiles, profile.std or 0.0, values)
    labels = [f"<{edges[0]:.3g}"] if edges else ["all"]
    labels += [f"{a:.3g}..{b:.3g}" for a, b in itertools.pairwise(edges)]
    labels += [f">={edges[-1]:.3g}"] if edges else []
    result = _result(profile.name, method, score, limit, reference_counts, current_counts, labels)
    return result if significant else replace(result, drifted=False)


def _category_drift(
    profile: FeatureProfile, values: np.ndarray, method: str, limit: float
) -> FeatureDrift:
    names, reference, current = category_shares(profile.frequencies or {}, values)
    if method == "chi2":
        score = chi_square_p_value(reference, current)
    else:
        method, score = "jensen_shannon", jensen_shannon_distance(reference, current)
    return _result(profile.name, method, score, limit, reference, current, names)


def _result(
    feature: str,
    method: str,
    score: float,
    limit: float,
    reference: np.ndarray,
    current: np.ndarray,
    bins: list[str],
) -> FeatureDrift:
    drifted = score < limit if method in P_VALUE_METHODS else score >= limit
    return FeatureDrift(
        feature,
        method,
        score,
        limit,
        drifted,
        list(_shares(reference)),
        list(_shares(current)),
        bins,
    )
