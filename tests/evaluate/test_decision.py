"""A binary classifier's tuned threshold: chosen by brute force's answer, applied alike."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnnops.evaluate.decision import choose_threshold, decide, rarer_class
from dnnops.evaluate.metrics import classification_metrics


def _brute_force(
    scores: np.ndarray, truth: np.ndarray, rule: str, costs: tuple[float, float]
) -> float:
    best = -np.inf
    for threshold in np.unique(scores):
        said = scores >= threshold
        tp, fp = float((said & truth).sum()), float((said & ~truth).sum())
        fn, tn = float((~said & truth).sum()), float((~said & ~truth).sum())
        if rule == "f1":
            value = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else 0.0
        elif rule == "balanced":
            value = (tp / (tp + fn) if tp + fn else 0.0) + (tn / (tn + fp) if tn + fp else 0.0)
            value /= 2
        else:
            value = -(costs[0] * fp + costs[1] * fn) / len(scores)
        best = max(best, value)
    return best


@settings(max_examples=60, deadline=None)
@given(
    st.integers(5, 200),
    st.integers(0, 10_000),
    st.sampled_from(["f1", "balanced", "cost"]),
    st.booleans(),
)
def test_the_chosen_threshold_is_the_best_on_the_rows(
    rows: int, seed: int, rule: str, coarse: bool
) -> None:
    rng = np.random.default_rng(seed)
    labels = (rng.random(rows) < 0.2).astype("int64")
    p1 = np.clip(0.3 * labels + rng.random(rows) * 0.7, 0, 1)
    if coarse:
        p1 = np.round(p1, 1)  # ties
    probabilities = np.column_stack([1 - p1, p1])
    costs = (1.0, 5.0)
    chosen = choose_threshold(probabilities, labels, rule=rule, positive=1, costs=costs)  # type: ignore[arg-type]
    assert chosen.score == pytest.approx(_brute_force(p1, labels == 1, rule, costs))
    answered = decide(probabilities, chosen)
    assert ((answered == 1) == (p1 >= chosen.threshold)).all()


def test_a_threshold_answers_the_rare_class_that_argmax_never_does() -> None:
    rng = np.random.default_rng(1)
    labels = (rng.random(2000) < 0.03).astype("int64")
    p1 = np.clip(0.25 * labels + rng.normal(0.1, 0.06, 2000), 0.0, 0.45)  # never above 0.5
    probabilities = np.column_stack([1 - p1, p1])
    assert rarer_class(labels) == 1
    plain = classification_metrics(labels, probabilities)
    assert plain["min_recall"] == 0.0  # argmax: the minority is never answered
    tuned = choose_threshold(probabilities, labels, rule="balanced", positive=1)
    assert 0.05 < tuned.threshold < 0.45
    metrics = classification_metrics(labels, probabilities, tuned)
    assert metrics["balanced_accuracy"] > 0.8 and metrics["min_recall"] > 0.7
    mirrored = tuned.model_copy(update={"positive": 0})  # the rare class in column 0
    assert (decide(probabilities[:, ::-1], mirrored) == 1 - decide(probabilities, tuned)).all()
    three = np.full((4, 3), 1 / 3)
    assert list(decide(three, tuned)) == [0, 0, 0, 0]  # not binary: argmax
