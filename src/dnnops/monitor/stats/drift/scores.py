"""Drift statistics as pure functions of counts and values: the arithmetic each drift
method (``methods/``) is made of. The reference side is the profile stored with the model
version (101 percentiles and decile-bin counts per number, frequencies per category), so a
drift check never rereads the training data."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from dnnops.data.schema import category_key
from dnnops.data.selection import counts_in_bins
from dnnops.monitor.stats.significance import goodness_of_fit_p_value

EPSILON = 1e-4
KS_ALPHA = 0.001
"""``ks_wasserstein``: the KS test must reject "same distribution" at this level (0.05
Bonferroni-corrected for 50 features) before the size of the shift is looked at."""


def psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Population stability index over the same bins: sum (c - r) * ln(c / r)."""
    r = shares(reference_counts)
    c = shares(current_counts)
    return float(np.sum((c - r) * np.log(c / r)))


def shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    shares = counts / total if total > 0 else np.full(len(counts), 1.0 / len(counts))
    clipped: np.ndarray = np.clip(shares, EPSILON, None)
    return clipped


def bin_counts(edges: list[float], values: np.ndarray) -> np.ndarray:
    """Counts on the reference's open-ended bins (inner ``edges``)."""
    finite = values[np.isfinite(values)]
    return counts_in_bins(np.asarray(edges, dtype="float64"), finite)


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
    return statistic, float(kolmogorov(statistic * math.sqrt(effective)))


def kolmogorov(x: float) -> float:
    """Survival function of the Kolmogorov distribution, Q(x) = 2 sum (-1)^(k-1) e^(-2k^2x^2)
    (as ``scipy.special.kolmogorov``; written out so drift checks never import scipy)."""
    if x <= 0.2:
        return 1.0  # Q(0.2) = 1 - 3e-26: the series converges slowly below, the answer is 1
    k = np.arange(1, 101)
    terms = 2.0 * (-1.0) ** (k - 1) * np.exp(-2.0 * k**2 * x * x)
    return float(min(1.0, max(0.0, terms.sum())))


def _relative_entropy(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) in nats over the entries where p > 0 (q > 0 there by construction)."""
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


def percentile_counts(percentiles: list[float], values: np.ndarray) -> np.ndarray:
    """Counts of ``values`` over the reference's 101 percentiles: index k holds the values
    with exactly k percentile points at or below them. One pass; every CDF test and the
    decile histogram are read off it."""
    return bin_counts(percentiles, values)


def ks_wasserstein(
    percentiles: list[float], std: float, reference_count: int, *, counts: np.ndarray
) -> tuple[float, float]:
    """(W1 in reference stds, KS p-value), both from the two CDFs on the reference's 101
    percentiles (``counts`` from ``percentile_counts``): no sort of the window.

    Significance alone flags negligible shifts in windows of millions of rows, size alone
    flags noise in windows of hundreds; ``ks_wasserstein`` needs both."""
    edges = np.asarray(percentiles, dtype="float64")
    total = int(counts.sum())
    if total == 0 or len(edges) < 2:
        return 0.0, 1.0
    below = np.cumsum(counts) / total  # below[k]: share of values under point k
    current_cdf = below[: len(edges)]
    reference_cdf = np.linspace(0.0, 1.0, len(edges))
    # Tied points (a pixel that is 0 in 90% of images has 90 points at 0): at a tied value
    # both CDFs count the rows equal to it, read past its last point (a discrete feature has
    # nothing between that value and the next point).
    first = np.searchsorted(edges, edges, side="left")
    last = np.searchsorted(edges, edges, side="right") - 1
    tied = last > first
    after = np.minimum(last + 1, len(below) - 1)
    current_cdf = np.where(tied, below[after], current_cdf)
    reference_cdf = np.where(tied, last / (len(edges) - 1), reference_cdf)
    gaps = np.abs(reference_cdf - current_cdf)
    statistic = float(gaps.max())
    effective = reference_count * total / (reference_count + total)
    p_value = float(kolmogorov(statistic * math.sqrt(effective)))
    distance = float(np.sum(gaps[:-1] * np.diff(edges)))
    return (distance / std if std > 0 else distance), p_value


def decile_counts(
    percentiles: list[float], edges: list[float], counts: np.ndarray
) -> np.ndarray | None:
    """The decile-bin histogram derived from ``percentile_counts`` when the profile's bin
    edges are its 10th..90th percentiles (as profiles are built); None otherwise."""
    points = np.asarray(percentiles, dtype="float64")
    if len(points) != 101 or not np.array_equal(np.unique(points[10:100:10]), edges):
        return None
    first = [10 * j for j in range(1, 10)]
    positions = np.array(sorted({float(points[i]): i for i in reversed(first)}.values()))
    # a value with k percentile points at or below it lies above every edge at position < k
    bucket = np.searchsorted(positions, np.arange(len(counts)), side="left")
    return np.bincount(bucket, weights=counts, minlength=len(positions) + 1)


def wasserstein_normalized(percentiles: list[float], std: float, values: np.ndarray) -> float:
    """W1 between the quantile functions, in reference standard deviations."""
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return 0.0
    current = np.percentile(finite, np.linspace(0.0, 100.0, len(percentiles)))
    distance = float(np.mean(np.abs(current - np.asarray(percentiles))))
    return distance / std if std > 0 else distance


def category_counts(values: pd.Series) -> dict[str, int]:
    """Count per category key, nulls left out (a categorical series counts its codes)."""
    current: dict[str, int] = {}
    for value, count in values.value_counts(dropna=True, sort=False).items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        key = category_key(value)
        current[key] = current.get(key, 0) + int(count)
    return current


def category_union(
    frequencies: Mapping[str, int], current: Mapping[str, int]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Both counts over the union of categories, the reference's first."""
    names = list(frequencies) + sorted(set(current) - set(frequencies))
    reference = np.array([frequencies.get(n, 0) for n in names], dtype="float64")
    return names, reference, np.array([current.get(n, 0) for n in names], dtype="float64")


def chi_square_p_value(reference: np.ndarray, current: np.ndarray) -> float:
    """Goodness of fit of the current counts to the reference proportions (smoothed)."""
    if current.sum() == 0:
        return 1.0
    expected = shares(reference) * current.sum()
    expected *= current.sum() / expected.sum()
    return goodness_of_fit_p_value(current, expected)


def jensen_shannon_distance(reference: np.ndarray, current: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two count vectors."""
    if current.sum() == 0 or reference.sum() == 0:
        return 0.0
    p, q = reference / reference.sum(), current / current.sum()
    m = (p + q) / 2
    divergence = (_relative_entropy(p, m) + _relative_entropy(q, m)) / 2 / math.log(2)  # bits
    return float(math.sqrt(max(float(divergence), 0.0)))
