"""The embedding drift test's statistics: calibrated under no change, powered under one."""

from __future__ import annotations

import numpy as np

from dnnops.data.embedding_profile import (
    fit_embedding_profile,
    fit_projection,
    fourier_features,
    project,
)
from dnnops.monitor.stats.embedding_drift import embedding_drift

SCALES = np.linspace(3.0, 0.2, 16)  # embeddings' principal directions: unequal spreads


def _verdict(reference: np.ndarray, live: np.ndarray, alpha: float = 0.05) -> tuple[bool, float]:
    profile = fit_embedding_profile(reference)
    found = embedding_drift(
        profile, fourier_features(profile, live).sum(axis=0).tolist(), len(live), alpha=alpha
    )
    assert found is not None
    return found.drifted, found.p_value


def test_no_change_alarms_at_the_significance_level() -> None:
    rng = np.random.default_rng(7)
    trials = 300
    draw = rng.standard_normal
    alarms = sum(
        _verdict(draw((300, 16)) * SCALES, draw((100, 16)) * SCALES)[0] for _ in range(trials)
    )
    # 5% of 300 is 15; the binomial's 99.9% range is about 5..29
    assert 4 <= alarms <= 30, alarms


def test_a_shift_a_new_cluster_and_a_spread_are_found() -> None:
    rng = np.random.default_rng(8)
    reference = rng.standard_normal((500, 16)) * SCALES
    live = rng.standard_normal((300, 16)) * SCALES
    shifted = live + np.r_[1.5, np.zeros(15)]
    cluster = live.copy()
    cluster[:60] = rng.standard_normal((60, 16)) * 0.3 + 4.0  # a class it never saw
    spread = live * 1.5
    for changed in (shifted, cluster, spread):
        drifted, p_value = _verdict(reference, changed, alpha=0.01)
        assert drifted and p_value < 1e-3
    assert not _verdict(reference, live, alpha=0.01)[0]


def test_sums_of_minutes_give_the_window_test() -> None:
    rng = np.random.default_rng(9)
    profile = fit_embedding_profile(rng.standard_normal((200, 4)))
    live = rng.standard_normal((90, 4)) + 0.5
    parts = [fourier_features(profile, live[i : i + 30]).sum(axis=0) for i in (0, 30, 60)]
    merged = embedding_drift(profile, list(np.sum(parts, axis=0)), 90, alpha=0.01)
    whole = embedding_drift(
        profile, list(fourier_features(profile, live).sum(axis=0)), 90, alpha=0.01
    )
    assert merged is not None and whole is not None
    assert abs(merged.mmd2 - whole.mmd2) < 1e-12 and merged.drifted


def test_a_sum_of_another_length_or_no_rows_gives_no_verdict() -> None:
    profile = fit_embedding_profile(np.random.default_rng(1).standard_normal((50, 3)))
    assert embedding_drift(profile, [0.0] * 5, 10, alpha=0.01) is None
    assert (
        embedding_drift(profile, list(np.zeros(len(profile.reference_mean))), 0, alpha=0.01) is None
    )


def test_the_projection_keeps_the_widest_directions() -> None:
    rng = np.random.default_rng(3)
    features = rng.standard_normal((400, 40)) * np.r_[np.full(5, 10.0), np.full(35, 0.1)]
    projection = fit_projection(features)
    projected = project(projection, features)
    assert projected.shape == (400, 16)
    assert projected[:, :5].var(axis=0).min() > 50 * projected[:, 5:].var(axis=0).max()
