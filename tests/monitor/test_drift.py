"""Drift statistics: no drift on the same distribution, drift on a shifted one, and the
properties each score promises."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnnops.data.profile import numeric_profile, profile_features
from dnnops.monitor.stats.drift import (
    feature_drift,
    jensen_shannon_distance,
    ks_p_value,
    psi,
)

RNG = np.random.default_rng(0)
REFERENCE = RNG.normal(0.0, 1.0, 5000)
PROFILE = numeric_profile("x", REFERENCE)


@pytest.mark.parametrize("method", ["psi", "ks", "wasserstein"])
def test_same_distribution_does_not_drift_and_a_shift_does(method: str) -> None:
    same = np.random.default_rng(1).normal(0.0, 1.0, 2000)
    shifted = np.random.default_rng(2).normal(0.8, 1.0, 2000)
    assert not feature_drift(PROFILE, same, method).drifted
    result = feature_drift(PROFILE, shifted, method)
    assert result.drifted
    assert result.feature == "x" and result.method == method
    assert abs(sum(result.reference) - 1) < 1e-2 and len(result.bins) == len(result.current)


def test_categories_use_jensen_shannon_or_chi_square() -> None:
    frame = pd.DataFrame({"city": ["a"] * 500 + ["b"] * 300 + ["c"] * 200})
    profile = profile_features(frame, {"city"})[0]
    same = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 20, dtype=object)
    moved = np.array(["a"] * 10 + ["b"] * 20 + ["c"] * 50 + ["new"] * 20, dtype=object)
    assert not feature_drift(profile, same).drifted
    assert feature_drift(profile, moved).drifted
    assert feature_drift(profile, moved, "chi2").drifted
    assert feature_drift(profile, moved, "psi").method == "jensen_shannon"
    assert "new" in feature_drift(profile, moved).bins


def test_ks_matches_scipy_on_raw_samples() -> None:
    current = np.random.default_rng(3).normal(0.3, 1.0, 1000)
    from scipy import stats

    ours, _ = ks_p_value(PROFILE.percentiles or [], PROFILE.count, current)
    exact = stats.ks_2samp(REFERENCE, current).statistic
    assert abs(ours - exact) < 0.02  # the reference is summarised by 101 percentiles


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 1000), min_size=2, max_size=12))
def test_psi_is_zero_on_identical_bins_and_never_negative(counts: list[int]) -> None:
    array = np.array(counts, dtype="float64")
    assert abs(psi(array, array)) < 1e-12
    assert psi(array, array[::-1].copy()) >= -1e-12


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.integers(1, 100), min_size=2, max_size=8),
    st.lists(st.integers(1, 100), min_size=2, max_size=8),
)
def test_jensen_shannon_is_a_bounded_symmetric_distance(a: list[int], b: list[int]) -> None:
    size = min(len(a), len(b))
    x, y = np.array(a[:size], float), np.array(b[:size], float)
    assert 0.0 <= jensen_shannon_distance(x, y) <= 1.0 + 1e-9
    assert abs(jensen_shannon_distance(x, y) - jensen_shannon_distance(y, x)) < 1e-9


def test_a_broken_correlation_is_caught_where_marginals_see_nothing() -> None:
    from dnnops.config import DriftConfig
    from dnnops.monitor.stats.dataset_drift import dataset_drift, reference_from_frame

    rng = np.random.default_rng(5)
    base = rng.normal(0, 1, 4000)
    reference = pd.DataFrame(
        {"a": base, "b": base + rng.normal(0, 0.1, 4000), "c": rng.normal(0, 1, 4000)}
    )
    profile = reference_from_frame(reference)
    same = reference.sample(1000, random_state=1).reset_index(drop=True)
    shuffled = same.assign(
        b=same["b"].sample(frac=1.0, random_state=2).to_numpy()
    )  # marginals intact
    config = DriftConfig()
    stable = dataset_drift(profile, same, config)
    assert (
        not stable.drifted and stable.multivariate is not None and not stable.multivariate.drifted
    )
    broken = dataset_drift(profile, shuffled, config)
    assert not any(f.drifted for f in broken.features)  # no single feature moved
    assert broken.multivariate is not None and broken.multivariate.drifted
    assert broken.drifted


@given(
    st.lists(st.integers(0, 12), min_size=20, max_size=400),
    st.lists(st.floats(-5, 20, allow_nan=False), min_size=1, max_size=400),
)
def test_decile_counts_derived_from_the_percentile_pass_equal_a_direct_count(
    reference: list[int], current: list[float]
) -> None:
    from dnnops.data.profile import numeric_profile
    from dnnops.monitor.stats.drift.scores import bin_counts, decile_counts, percentile_counts

    profile = numeric_profile("x", np.asarray(reference, dtype="float64"))
    values = np.asarray(current, dtype="float64")
    assert profile.percentiles is not None and profile.bin_edges is not None
    derived = decile_counts(
        profile.percentiles, profile.bin_edges, percentile_counts(profile.percentiles, values)
    )
    assert derived is not None
    assert np.array_equal(derived, bin_counts(profile.bin_edges, values))
