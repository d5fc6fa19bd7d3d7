"""The embedding drift test: calibrated under no change, powered under one, the textbook
statistic, and a window's sample the same whichever way its minutes merge."""

from __future__ import annotations

import numpy as np

from dnnops.data.embedding_profile import fit_embedding_profile, fit_projection, project
from dnnops.monitor.stats.embedding_drift import embedding_drift, permutation_test
from dnnops.monitor.stats.embedding_sample import (
    EmbeddingSample,
    merge_samples,
    sample_key,
    sample_of,
)

SCALES = np.linspace(3.0, 0.2, 16)  # embeddings' principal directions: unequal spreads


def _verdict(reference: np.ndarray, live: np.ndarray, alpha: float = 0.05) -> tuple[bool, float]:
    profile = fit_embedding_profile(reference)
    found = embedding_drift(profile, live.tolist(), len(live), alpha=alpha)
    assert found is not None
    return found.drifted, found.p_value


def test_no_change_alarms_at_the_significance_level() -> None:
    rng = np.random.default_rng(7)
    trials = 200
    draw = rng.standard_normal
    alarms = sum(
        _verdict(draw((200, 16)) * SCALES, draw((100, 16)) * SCALES)[0] for _ in range(trials)
    )
    # 5% of 200 is 10; the binomial's 99.9% range is about 2..21
    assert 2 <= alarms <= 21, alarms


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
        assert drifted and p_value == 1 / 201  # no relabelling comes near
    assert not _verdict(reference, live, alpha=0.01)[0]


def test_the_statistic_is_the_unbiased_mmd_of_the_rbf_kernel() -> None:
    rng = np.random.default_rng(4)
    x, y, width = rng.standard_normal((12, 3)), rng.standard_normal((9, 3)) + 0.3, 1.7

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.exp(-np.sum((a - b) ** 2) / (2 * width * width)))

    def mean_off_diagonal(rows: np.ndarray) -> float:
        pairs = [k(a, b) for i, a in enumerate(rows) for j, b in enumerate(rows) if i != j]
        return sum(pairs) / len(pairs)

    across = sum(k(a, b) for a in x for b in y) / (len(x) * len(y))
    expected = mean_off_diagonal(x) + mean_off_diagonal(y) - 2 * across
    mmd2, p_value = permutation_test(x, y, width)
    assert abs(mmd2 - expected) < 1e-6 and 0.0 < p_value <= 1.0  # a float32 kernel


def test_minutes_merge_into_the_window_sample_in_any_order() -> None:
    rng = np.random.default_rng(9)
    ids = [f"p-{i}" for i in range(600)]
    embeddings = rng.standard_normal((600, 4)).tolist()
    keys = [sample_key(i) for i in ids]
    minutes = [sample_of(keys[i : i + 100], embeddings[i : i + 100]) for i in range(0, 600, 100)]
    assert all(len(m.rows) == 64 and m.seen == 100 and m.threshold < 1.0 for m in minutes)
    forward: EmbeddingSample | None = None
    for minute in minutes:
        forward = merge_samples(forward, minute)
    backward: EmbeddingSample | None = None
    for minute in reversed(minutes):
        backward = merge_samples(minute, backward)
    assert forward == backward and forward is not None and forward.seen == 600
    every_row_under = sorted(
        [key, *row] for key, row in zip(keys, embeddings, strict=True) if key < forward.threshold
    )
    assert forward.rows == every_row_under  # a uniform sample: every row under the key
    assert 64 * 6 * 0.6 < len(forward.rows) <= 64 * 6
    assert EmbeddingSample.from_json(forward.to_json()) == forward


def test_too_few_rows_or_another_width_give_no_verdict() -> None:
    profile = fit_embedding_profile(np.random.default_rng(1).standard_normal((50, 3)))
    assert embedding_drift(profile, [[0.0] * 5] * 20, 20, alpha=0.01) is None
    assert embedding_drift(profile, [[0.0] * 3] * 5, 5, alpha=0.01) is None


def test_the_projection_keeps_the_widest_directions() -> None:
    rng = np.random.default_rng(3)
    features = rng.standard_normal((400, 40)) * np.r_[np.full(5, 10.0), np.full(35, 0.1)]
    projection = fit_projection(features)
    projected = project(projection, features)
    assert projected.shape == (400, 16)
    assert projected[:, :5].var(axis=0).min() > 50 * projected[:, 5:].var(axis=0).max()
