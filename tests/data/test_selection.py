"""The sort-free order statistics and bin counts equal numpy's sort and search exactly."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dnnops.data.selection import SMALL, counts_in_bins, order_statistics

SHAPES = ["normal", "lognormal", "ties", "outliers", "constant", "two_values"]


def _column(shape: str, rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if shape == "normal":
        return rng.normal(3, 2, rows)
    if shape == "lognormal":
        return rng.lognormal(0, 3, rows)
    if shape == "ties":
        return rng.integers(-5, 6, rows).astype("float64") / 4
    if shape == "outliers":
        values = rng.normal(0, 1, rows)
        values[rng.integers(0, rows, 50)] = rng.choice([-1e150, 1e150, 1e12, -7e9], 50)
        return values
    if shape == "constant":
        return np.full(rows, 1.25)
    return np.where(rng.random(rows) < 0.999, 0.0, 1.0)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(SHAPES), st.integers(SMALL, 3 * SMALL), st.integers(0, 1000))
def test_order_statistics_equal_a_sort(shape: str, rows: int, seed: int) -> None:
    values = _column(shape, rows, seed)
    ranks = np.unique(np.r_[0, rows - 1, np.random.default_rng(seed).integers(0, rows, 200)])
    np.testing.assert_array_equal(order_statistics(values, ranks), np.sort(values)[ranks])


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from(SHAPES),
    st.sampled_from(SHAPES),
    st.integers(SMALL, 3 * SMALL),
    st.integers(0, 1000),
)
def test_bin_counts_equal_a_search(edges_from: str, shape: str, rows: int, seed: int) -> None:
    edges = np.percentile(_column(edges_from, 5000, seed + 1), np.linspace(0, 100, 101))
    values = _column(shape, rows, seed)
    expected = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    np.testing.assert_array_equal(counts_in_bins(edges, values), expected)


@settings(max_examples=12, deadline=None)
@given(st.sampled_from(SHAPES), st.integers(0, 1000))
def test_large_profiles_match_numpy_percentiles_and_a_direct_count(shape: str, seed: int) -> None:
    from dnnops.data.profile import PERCENTILES, numeric_profile

    values = _column(shape, 3 * SMALL, seed)
    profile = numeric_profile("x", values)
    assert profile.percentiles is not None and profile.bin_edges is not None
    expected = np.percentile(values, PERCENTILES)
    np.testing.assert_allclose(profile.percentiles, expected, rtol=1e-12, atol=1e-9)
    direct = np.bincount(
        np.searchsorted(profile.bin_edges, values, side="right"),
        minlength=len(profile.bin_edges) + 1,
    )
    assert profile.bin_counts == direct.tolist()
