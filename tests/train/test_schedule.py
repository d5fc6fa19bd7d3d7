from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from dnnops.train.schedule import lr_factor


@given(total=st.integers(1, 5000), warmup=st.integers(0, 500), min_ratio=st.floats(0, 1))
def test_factor_stays_between_the_floor_and_one(total: int, warmup: int, min_ratio: float) -> None:
    for step in (0, warmup // 2, warmup, (warmup + total) // 2, total, total + 10):
        factor = lr_factor(step, total, warmup, schedule="cosine", min_ratio=min_ratio)
        assert min(min_ratio, 1.0 / max(1, warmup)) - 1e-12 <= factor <= 1.0 + 1e-12


@given(warmup=st.integers(1, 300))
def test_warmup_rises_linearly_to_one(warmup: int) -> None:
    factors = [lr_factor(s, 1000, warmup) for s in range(warmup)]
    assert factors == sorted(factors)
    assert factors[-1] == 1.0


@given(total=st.integers(2, 3000), min_ratio=st.floats(0, 0.9))
def test_cosine_decays_monotonically_to_the_floor(total: int, min_ratio: float) -> None:
    factors = [
        lr_factor(s, total, 0, schedule="cosine", min_ratio=min_ratio) for s in range(total + 1)
    ]
    assert all(a >= b - 1e-12 for a, b in itertools.pairwise(factors))
    assert abs(factors[-1] - min_ratio) < 1e-9


def test_constant_schedule_is_flat_after_warmup() -> None:
    assert [lr_factor(s, 100, 2, schedule="constant") for s in range(5)] == [
        0.5,
        1.0,
        1.0,
        1.0,
        1.0,
    ]
