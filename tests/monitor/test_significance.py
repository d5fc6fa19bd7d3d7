"""The written-out tail probabilities agree with scipy's over the ranges the gates use."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from dnnops.monitor.stats.significance import (
    binom_sf,
    chi2_sf,
    contingency_p_value,
    goodness_of_fit_p_value,
)


@pytest.mark.parametrize("dof", [1, 2, 3, 9, 30, 200])
def test_chi2_sf_matches_scipy_from_the_bulk_to_the_far_tail(dof: int) -> None:
    for statistic in [0.0, 0.01, 0.5, dof * 0.7, dof, dof + 1, dof * 2.5, dof * 6 + 40]:
        expected = float(stats.chi2.sf(statistic, dof))
        assert chi2_sf(statistic, dof) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_binom_sf_matches_scipy_on_slow_tails_of_canary_sized_samples() -> None:
    for n in [1, 10, 40, 400, 5000]:
        for k in [-1, 0, 1, 2, 3, 10, n - 1, n]:
            expected = float(stats.binom.sf(k, n, 0.01))
            assert binom_sf(k, n, 0.01) == pytest.approx(expected, rel=1e-9, abs=1e-300), (k, n)
    assert binom_sf(3, 10, 0.5) == pytest.approx(float(stats.binom.sf(3, 10, 0.5)), rel=1e-12)


def test_contingency_and_goodness_of_fit_match_scipy() -> None:
    rng = np.random.default_rng(7)
    for classes in [2, 3, 10]:
        for _ in range(20):
            table = rng.integers(1, 60, size=(2, classes)).astype("float64")
            expected = float(stats.chi2_contingency(table).pvalue)
            assert contingency_p_value(table) == pytest.approx(expected, rel=1e-9, abs=1e-300)
            observed, reference = table
            shares = reference / reference.sum() * observed.sum()
            fit = float(stats.chisquare(observed, shares).pvalue)
            assert goodness_of_fit_p_value(observed, shares) == pytest.approx(fit, rel=1e-9)


def test_bad_degrees_of_freedom_are_named() -> None:
    with pytest.raises(ValueError, match="degrees of freedom"):
        chi2_sf(1.0, 0)
