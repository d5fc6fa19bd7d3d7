"""Tensor inputs under the serving policy: the quick in-range path and the per-row masks
must agree on every mix of NaN, infinities, out-of-range and boundary values."""

from __future__ import annotations

import numpy as np
import pytest

from dnnops.data.policy import InputPolicy, PolicyViolation, enforce_tensor
from dnnops.data.schema import TensorSchema, bounds

SPEC = TensorSchema(name="x", shape=[3, 4], dtype="float32", min=-1.0, max=2.0)
TOLERANCE = 0.1


def _expected(array: np.ndarray) -> dict[tuple[str, str], int]:
    """Rows with a NaN or infinity, and rows with a finite value outside the bounds."""
    low, high = bounds(SPEC, TOLERANCE)
    flat = array.reshape(len(array), -1)
    counts: dict[tuple[str, str], int] = {}
    non_finite = int((~np.isfinite(flat)).any(axis=1).sum())
    outside = int((np.isfinite(flat) & ((flat < low) | (flat > high))).any(axis=1).sum())
    if non_finite:
        counts[("x", "non_finite")] = non_finite
    if outside:
        counts[("x", "out_of_range")] = outside
    return counts


@pytest.mark.parametrize("seed", range(40))
def test_counts_match_a_per_row_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    low, high = bounds(SPEC, TOLERANCE)
    array = rng.uniform(-1.0, 2.0, size=(int(rng.integers(1, 5)), 3, 4))
    specials = [np.nan, np.inf, -np.inf, low, high, low - 1e-9, high + 1e-9, 50.0, -50.0]
    for _ in range(int(rng.integers(0, 3))):
        index = tuple(int(rng.integers(0, n)) for n in array.shape)
        array[index] = specials[int(rng.integers(0, len(specials)))]
    policy = InputPolicy(non_finite="impute", out_of_range="accept")
    checked, counts = enforce_tensor(array.copy(), SPEC, TOLERANCE, policy=policy, fill=0.0)
    assert dict(counts) == _expected(array)
    assert np.isfinite(checked).all()


def test_values_on_the_bounds_pass_untouched_and_beyond_them_are_named() -> None:
    low, high = bounds(SPEC, TOLERANCE)
    on_bounds = np.full((2, 3, 4), low)
    on_bounds[1] = high
    checked, counts = enforce_tensor(
        on_bounds, SPEC, TOLERANCE, policy=InputPolicy(out_of_range="reject"), fill=0.0
    )
    assert checked is on_bounds and not counts
    beyond = on_bounds.copy()
    beyond[1, 2, 3] = np.nextafter(high, np.inf)
    with pytest.raises(PolicyViolation, match="feature 'x'"):
        enforce_tensor(beyond, SPEC, TOLERANCE, policy=InputPolicy(out_of_range="reject"), fill=0.0)
    infinite = on_bounds.copy()
    infinite[0, 0, 0] = np.inf
    with pytest.raises(PolicyViolation, match="infinite value"):
        enforce_tensor(infinite, SPEC, TOLERANCE, policy=InputPolicy(), fill=0.0)
