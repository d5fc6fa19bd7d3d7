"""Each gate rule, the verdict and the state machine of a rollout, as pure functions."""

from __future__ import annotations

import math
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from dnnops.config import RolloutConfig
from dnnops.rollout.policy import (
    ArmStats,
    RolloutState,
    accuracy_gate,
    advance,
    divergence_gate,
    error_gate,
    evaluate_gates,
    is_due,
    latency_gate,
    plan_steps,
    success_rate_gate,
    verdict,
)

UNIFORM = {str(c): 10 for c in range(10)}


def arm(
    requests: int = 200,
    errors: int = 0,
    p99: float = 10.0,
    classes: dict[str, int] | None = None,
    labeled: int = 0,
    correct: int = 0,
) -> ArmStats:
    counts = dict(UNIFORM) if classes is None else classes
    return ArmStats("1", requests, errors, p99, counts, labeled, correct)


def rollout(step: int = 0, failed: int = 0, steps: tuple[int, ...] = (5, 50, 100)) -> RolloutState:
    return RolloutState(
        id=1,
        endpoint="digits",
        model="digits",
        candidate=2,
        baseline=1,
        mode="canary",
        steps=steps,
        policy={},
        status="running",
        step=step,
        failed_checks=failed,
        step_started=100.0,
        created=100.0,
        updated=100.0,
    )


def test_success_rate_gate_passes_at_the_minimum_and_fails_below() -> None:
    assert success_rate_gate(arm(100, 1), 0.99).outcome == "pass"
    failed = success_rate_gate(arm(100, 2), 0.99)
    assert failed.outcome == "fail"
    assert "98.00%" in failed.message
    assert success_rate_gate(arm(0, 0), 0.99).value == 1.0


def test_latency_gate_tells_a_slower_version_from_one_slow_request() -> None:
    stable = arm(p99=10.0)
    one_hiccup = replace(arm(p99=40.0), latencies_ms=(5.0,) * 39 + (40.0,))
    gate = latency_gate(one_hiccup, stable, 1.5, slack_ms=0.0)
    assert gate.outcome == "pass"  # the p99 of 40 requests is their maximum
    assert "1 of 40 requests over 15.0 ms" in gate.message
    three = replace(arm(p99=40.0), latencies_ms=(5.0,) * 37 + (40.0,) * 3)
    assert latency_gate(three, stable, 1.5, slack_ms=0.0).outcome == "fail"
    slower = replace(arm(p99=20.0), latencies_ms=(20.0,) * 40)
    assert latency_gate(slower, stable, 1.5, slack_ms=0.0).outcome == "fail"
    heavy_tail = replace(arm(p99=40.0), latencies_ms=(5.0,) * 970 + (40.0,) * 30)
    assert latency_gate(heavy_tail, stable, 1.5, slack_ms=0.0).outcome == "fail"  # 3% slow: real


def test_latency_gate_compares_with_the_stable_p99_and_tolerates_slack() -> None:
    assert latency_gate(arm(p99=140.0), arm(p99=100.0), 1.5, slack_ms=0.0).outcome == "pass"
    assert latency_gate(arm(p99=160.0), arm(p99=100.0), 1.5, slack_ms=0.0).outcome == "fail"
    # 3 ms against 1 ms is a ratio of 3 but within a 5 ms slack: scheduling noise
    assert latency_gate(arm(p99=3.0), arm(p99=1.0), 1.5, slack_ms=5.0).outcome == "pass"
    assert latency_gate(arm(p99=math.nan), arm(p99=1.0), 1.5, slack_ms=5.0).outcome == "skip"


def test_divergence_gate_catches_a_model_that_predicts_one_class() -> None:
    same = divergence_gate(arm(classes=dict(UNIFORM)), arm(classes=dict(UNIFORM)), 0.1)
    assert same.outcome == "pass"
    assert same.value == 0.0
    collapsed = divergence_gate(arm(classes={"3": 100}), arm(classes=dict(UNIFORM)), 0.1)
    assert collapsed.outcome == "fail"
    assert collapsed.value is not None and collapsed.value > 0.5
    assert divergence_gate(arm(classes={"3": 5}), arm(classes={}), 0.1).outcome == "skip"


def test_accuracy_gate_needs_labels_on_both_sides() -> None:
    assert (
        accuracy_gate(arm(labeled=100, correct=95), arm(labeled=100, correct=96), 0.02).outcome
        == "pass"
    )
    drop = accuracy_gate(arm(labeled=100, correct=10), arm(labeled=100, correct=96), 0.02)
    assert drop.outcome == "fail"
    assert drop.value is not None and abs(drop.value - 0.86) < 1e-9
    assert (
        accuracy_gate(arm(labeled=5, correct=0), arm(labeled=100, correct=96), 0.02).outcome
        == "skip"
    )


def test_verdict_waits_for_enough_requests_but_fails_a_certain_failure_early() -> None:
    policy = RolloutConfig()
    healthy = arm(requests=10)
    assert (
        verdict(healthy, evaluate_gates(healthy, arm(), policy), 100, min_success_rate=0.99)
        == "wait"
    )
    broken = arm(requests=10, errors=5)  # 5 errors already exceed 1% of 100 requests
    assert (
        verdict(broken, evaluate_gates(broken, arm(), policy), 100, min_success_rate=0.99) == "fail"
    )
    enough = arm(requests=150)
    assert (
        verdict(enough, evaluate_gates(enough, arm(), policy), 100, min_success_rate=0.99) == "pass"
    )
    diverged = arm(requests=150, classes={"1": 150})
    assert (
        verdict(diverged, evaluate_gates(diverged, arm(), policy), 100, min_success_rate=0.99)
        == "fail"
    )


def test_advance_walks_the_steps_then_promotes() -> None:
    state = rollout()
    first = advance(state, "pass", [], now=200.0, failure_threshold=2)
    assert (first.action, first.state.step, first.state.weight) == ("set_traffic", 1, 50)
    assert first.state.step_started == 200.0
    last = advance(rollout(step=2), "pass", [], now=300.0, failure_threshold=2)
    assert last.action == "promote"
    assert last.state.status == "promoted"
    assert len(last.state.history) == 1


def test_advance_rolls_back_at_the_failure_threshold() -> None:
    once = advance(rollout(), "fail", [], now=200.0, failure_threshold=2)
    assert once.action == "none"
    assert (once.state.status, once.state.failed_checks, once.state.step) == ("running", 1, 0)
    twice = advance(once.state, "fail", [], now=230.0, failure_threshold=2)
    assert twice.action == "rollback"
    assert twice.state.status == "rolled_back"
    assert "2 failed check(s)" in twice.state.reason


def test_advance_on_wait_keeps_the_window_open() -> None:
    waited = advance(rollout(), "wait", [], now=200.0, failure_threshold=2)
    assert waited.action == "none"
    assert waited.state.step_started == 100.0
    assert waited.state.history[-1]["verdict"] == "wait"


def test_is_due_only_for_running_rollouts_after_an_interval() -> None:
    assert not is_due(rollout(), 110.0, 30.0)
    assert is_due(rollout(), 130.0, 30.0)


def test_plan_steps_per_mode() -> None:
    assert plan_steps("canary", [5, 25, 100]) == (5, 25, 100)
    assert plan_steps("blue_green", [5, 25, 100]) == (100,)
    assert plan_steps("shadow", [50, 100]) == (0, 50, 100)


@given(
    verdicts=st.lists(st.sampled_from(["pass", "fail", "wait"]), max_size=30),
    threshold=st.integers(1, 4),
)
def test_a_rollout_ends_at_most_once_and_never_rolls_back_early(
    verdicts: list[str], threshold: int
) -> None:
    state = rollout()
    ends = 0
    for index, result in enumerate(verdicts):
        if not state.active:
            break
        moved = advance(state, result, [], now=100.0 + index, failure_threshold=threshold)  # type: ignore[arg-type]
        ends += moved.action in ("promote", "rollback")
        if moved.action == "rollback":
            assert moved.state.failed_checks == threshold
        state = moved.state
    assert ends <= 1
    assert state.failed_checks <= threshold
    assert 0 <= state.step < len(state.steps)


def test_divergence_within_sampling_noise_passes() -> None:
    # 100 predictions of one distribution, split unevenly by chance: far by JS, not by test
    noisy = {"0": 14, "1": 6, "2": 12, "3": 8, "4": 13, "5": 7, "6": 11, "7": 9, "8": 15, "9": 5}
    gate = divergence_gate(arm(classes=noisy), arm(classes={k: 100 for k in UNIFORM}), 0.1)
    assert gate.value is not None and gate.value > 0.1
    assert gate.outcome == "pass"


def test_accuracy_drop_within_sampling_noise_passes() -> None:
    # 27/30 against 96/100: a 6-point drop that 30 labels cannot tell from noise
    assert (
        accuracy_gate(arm(labeled=30, correct=27), arm(labeled=100, correct=96), 0.02).outcome
        == "pass"
    )
    assert (
        accuracy_gate(arm(labeled=300, correct=240), arm(labeled=300, correct=288), 0.02).outcome
        == "fail"
    )


def test_a_candidate_more_accurate_than_a_degraded_stable_may_diverge() -> None:
    policy = RolloutConfig()
    better = arm(classes={"1": 150, "2": 50}, labeled=200, correct=190)
    worse = arm(classes={"1": 50, "2": 150}, labeled=200, correct=150)
    gates = {g.gate: g for g in evaluate_gates(better, worse, policy)}
    assert gates["prediction_divergence"].outcome == "pass"
    assert "at least as accurate" in gates["prediction_divergence"].message
    flipped = {g.gate: g for g in evaluate_gates(worse, better, policy)}
    assert flipped["prediction_divergence"].outcome == "fail"
    assert flipped["accuracy_drop"].outcome == "fail"


def _regressor(errors: list[float]) -> ArmStats:
    return ArmStats("1", 200, 0, 10.0, {}, absolute_errors=tuple(errors))


def test_error_gate_fails_a_regressor_whose_error_grew_beyond_noise() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    stable = _regressor(list(np.abs(rng.normal(0, 10, 200))))
    same = _regressor(list(np.abs(rng.normal(0, 10, 200))))
    worse = _regressor(list(np.abs(rng.normal(0, 20, 200))))
    assert error_gate(same, stable, 0.1).outcome == "pass"
    failed = error_gate(worse, stable, 0.1)
    assert failed.outcome == "fail" and failed.value is not None and failed.value > 0.5
    assert "MAE" in failed.message
    few = _regressor(list(np.abs(rng.normal(0, 20, 10))))
    assert error_gate(few, stable, 0.1).outcome == "skip"
    slightly = _regressor([e * 1.15 for e in stable.absolute_errors[:40]])
    assert error_gate(slightly, stable, 0.1).outcome == "pass", "15% on 40 labels is noise"
    gates = {g.gate: g.outcome for g in evaluate_gates(worse, stable, RolloutConfig())}
    assert gates["error_increase"] == "fail" and gates["accuracy_drop"] == "skip"


def test_arm_stats_score_a_regressors_numbers_against_numeric_labels() -> None:
    from dnnops.predlog.records import PredictionRecord
    from dnnops.rollout.window import arm_stats

    records = [
        {"id": "a", "ts": 1.0, "endpoint": "e", "version": "2", "status": 200, "output": 10.0},
        {"id": "b", "ts": 1.0, "endpoint": "e", "version": "2", "status": 200, "output": 4.5},
        {"id": "c", "ts": 1.0, "endpoint": "e", "version": "2", "status": 200, "output": 7.0},
        {"id": "d", "ts": 1.0, "endpoint": "e", "version": "2", "status": 500},
    ]
    stats = arm_stats(
        [PredictionRecord.from_json(r) for r in records],
        {"a": 12.0, "b": "4", "c": "not a number"},
        "e",
        version="2",
        shadow=False,
    )
    assert stats.absolute_errors == (2.0, 0.5)
    assert (stats.labeled, stats.class_counts, stats.server_errors) == (0, {}, 1)
