"""Choosing escalation thresholds and running a cascade, on numbers whose answer is known."""

from __future__ import annotations

import numpy as np

from dnnops.evaluate.tiers import ESCALATE_ALL, choose_thresholds, run_cascade, validation_of


def test_threshold_escalates_only_the_rows_the_first_tier_gets_wrong() -> None:
    # the first tier is right exactly when it is confident (>= 0.8), the last always
    confidence = np.array([0.95, 0.9, 0.85, 0.8, 0.6, 0.5, 0.4, 0.3])
    first_right = confidence >= 0.8
    last_right = np.ones(8, dtype=bool)
    [threshold] = choose_thresholds([confidence, confidence], [first_right, last_right], 0.0)
    assert threshold == 0.8
    judged = validation_of([confidence], [first_right, last_right], [threshold], source="rows")
    assert judged.accuracy == 1.0 and judged.shares == [0.5, 0.5]


def test_budget_lets_the_first_tier_keep_rows_it_gets_wrong() -> None:
    confidence = np.linspace(0.99, 0.5, 100)
    first_right = np.ones(100, dtype=bool)
    first_right[[10, 20, 70]] = False  # wrong on three rows, two of them confident
    last_right = np.ones(100, dtype=bool)
    strict = choose_thresholds([confidence, confidence], [first_right, last_right], 0.0)[0]
    loose = choose_thresholds([confidence, confidence], [first_right, last_right], 0.02)[0]
    assert strict == confidence[9]  # stops before the first confident mistake
    assert loose == confidence[69]  # two mistakes fit in 2 points; the third does not
    accuracy = validation_of([confidence], [first_right, last_right], [loose], source="r").accuracy
    assert accuracy >= 1.0 - 0.02


def test_a_lucky_threshold_after_a_violation_is_never_taken() -> None:
    # keeping the two most confident rows loses one (over budget); keeping four gains it
    # back, but a threshold reached only through a violation is not chosen
    confidence = np.array([0.9, 0.8, 0.7, 0.6])
    first_right = np.array([True, False, True, True])
    last_right = np.array([True, True, True, False])
    [threshold] = choose_thresholds([confidence, confidence], [first_right, last_right], 0.0)
    assert threshold == 0.9


def test_tied_confidences_stay_or_go_together() -> None:
    confidence = np.array([0.9, 0.7, 0.7, 0.5])
    first_right = np.array([True, True, False, False])
    last_right = np.ones(4, dtype=bool)
    [threshold] = choose_thresholds([confidence, confidence], [first_right, last_right], 0.0)
    assert threshold == 0.9  # 0.7 would keep a wrong row with the right one


def test_a_first_tier_never_better_escalates_everything() -> None:
    confidence = np.full(10, 0.99)
    [threshold] = choose_thresholds(
        [confidence, confidence], [np.zeros(10, dtype=bool), np.ones(10, dtype=bool)], 0.01
    )
    assert threshold == ESCALATE_ALL


def test_three_tiers_keep_the_budget_against_the_last() -> None:
    rng = np.random.default_rng(0)
    confidence = [rng.uniform(0.3, 1.0, 2000) for _ in range(3)]
    right = [rng.uniform(size=2000) < c for c in confidence[:2]] + [np.ones(2000, dtype=bool)]
    thresholds = choose_thresholds(confidence, right, 0.01)
    judged = validation_of(confidence, right, thresholds, source="r")
    assert judged.accuracy >= 0.99 - 1e-12
    assert judged.shares[0] > 0.05 and abs(sum(judged.shares) - 1.0) < 1e-9


def test_cascade_answers_each_row_from_the_tier_that_kept_it() -> None:
    calls: list[int] = []

    def first(x: np.ndarray) -> np.ndarray:
        calls.append(len(x))
        return np.stack([x[:, 0] * 10, np.zeros(len(x))], axis=1)  # confident when x is large

    def last(x: np.ndarray) -> np.ndarray:
        calls.append(len(x))
        return np.tile([0.0, 5.0], (len(x), 1))

    def top(p: np.ndarray) -> np.ndarray:
        result: np.ndarray = p.max(axis=1)
        return result

    x = np.array([[1.0], [0.01], [2.0], [0.0]], dtype="float32")
    answer = run_cascade([first, last], [top, top], [0.9], x=x)
    assert answer.tiers.tolist() == [0, 1, 0, 1]
    assert calls == [4, 2]  # the last tier saw only the two rows handed on
    assert answer.logits.argmax(axis=1).tolist() == [0, 1, 0, 1]
    assert len(answer.seconds) == 2
