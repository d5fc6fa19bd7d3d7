"""From class probabilities to the answered class: argmax, or a binary classifier's tuned
threshold (``train.threshold``), chosen on the validation split and stored with the version.

At 3% positives the probability of the rare class seldom passes 0.5, so argmax answers
the majority almost always; a threshold chosen for F1, balanced accuracy or a cost of
errors answers the rare class when it is likely enough, and the probabilities stay as the
model gave them (scikit-learn's ``TunedThresholdClassifierCV`` does the same).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

Rule = Literal["f1", "balanced", "cost"]


class Decision(BaseModel):
    """Answer class ``positive`` when its probability is at least ``threshold``, else the
    other class."""

    model_config = ConfigDict(frozen=True)
    positive: int
    """The class index the threshold is about (the rarer class in training)."""
    threshold: float
    rule: Rule
    score: float
    """The rule's value at the threshold on the validation split (F1, balanced accuracy,
    or minus the mean cost per row)."""


def decide(probabilities: np.ndarray, decision: Decision | None) -> np.ndarray:
    """Class indices (N,): argmax, or the decision's threshold on its positive class."""
    if decision is None or probabilities.shape[1] != 2:
        indices: np.ndarray = probabilities.argmax(axis=1)
        return indices
    positive = probabilities[:, decision.positive] >= decision.threshold
    return np.where(positive, decision.positive, 1 - decision.positive).astype("int64")


def choose_threshold(
    probabilities: np.ndarray,
    labels: np.ndarray,
    *,
    rule: Rule,
    positive: int,
    costs: tuple[float, float] = (1.0, 1.0),
) -> Decision:
    """The threshold on ``probabilities[:, positive]`` that maximizes ``rule`` over
    ``labels`` (class indices): F1 of the positive class, balanced accuracy, or the least
    cost with ``costs`` = (a false positive's, a false negative's)."""
    scores = probabilities[:, positive]
    truth = labels == positive
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], truth[order]
    # answering positive for the top k rows (k = 1..N), at a threshold equal to the k-th
    # score; only the last of tied scores is a threshold that can be set
    last_of_ties = np.r_[ranked[1:] != ranked[:-1], True]
    tp = np.cumsum(hits)[last_of_ties].astype("float64")
    fp = np.cumsum(~hits)[last_of_ties].astype("float64")
    positives, negatives = float(truth.sum()), float((~truth).sum())
    fn, tn = positives - tp, negatives - fp
    value = _rule_values(rule, tp=tp, fp=fp, fn=fn, tn=tn, costs=costs)
    best = int(np.argmax(value))
    return Decision(
        positive=positive,
        threshold=float(ranked[last_of_ties][best]),
        rule=rule,
        score=float(value[best]),
    )


def _rule_values(
    rule: Rule,
    *,
    tp: np.ndarray,
    fp: np.ndarray,
    fn: np.ndarray,
    tn: np.ndarray,
    costs: tuple[float, float],
) -> np.ndarray:
    """Each candidate threshold's value under ``rule`` (higher is better)."""
    if rule == "f1":
        denominator = 2 * tp + fp + fn
        f1: np.ndarray = np.divide(
            2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0
        )
        return f1
    if rule == "balanced":
        tpr = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=(tp + fn) > 0)
        tnr = np.divide(tn, tn + fp, out=np.zeros_like(tn), where=(tn + fp) > 0)
        result: np.ndarray = (tpr + tnr) / 2
        return result
    rows = tp + fp + fn + tn
    cost: np.ndarray = -(costs[0] * fp + costs[1] * fn) / np.maximum(rows, 1)
    return cost


def rarer_class(train_labels: np.ndarray) -> int:
    """The index of the rarer of two classes in training (ties: class 1)."""
    counts = np.bincount(train_labels.astype("int64"), minlength=2)
    return 0 if counts[0] < counts[1] else 1
