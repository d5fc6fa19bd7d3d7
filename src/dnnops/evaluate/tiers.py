"""Model tiers: a cheap model answers first and hands the rows it is unsure of to a costlier
one (a cascade). Each tier but the last escalates a row when its calibrated confidence is
under a threshold; the thresholds are chosen on held-out rows so the cascade's accuracy
stays within ``max_accuracy_loss`` of the last tier alone.

The thresholds are chosen from the last tier backwards: each one is lowered from "escalate
everything" (the cascade is then the later tiers exactly) for as long as every threshold
on the way keeps the accuracy within the budget, and stops at the first that does not. A
lone lucky threshold further down, reached after a violation, is never taken: on new rows
it would be the first to miss.

Numbers only: the plan is stored as JSON with the tiered version (``tiers.json``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict

from dnnops.evaluate.calibration import Calibrator
from dnnops.evaluate.metrics import softmax

PredictLogits = Callable[[np.ndarray], np.ndarray]
ESCALATE_ALL = 1.0 + 1e-9
"""A threshold above every confidence: the tier hands every row on."""


class TierMember(BaseModel):
    """One tier: the version it was copied from, where its files sit in the tiered
    version (``prefix``), how it judges its own confidence, and when it escalates."""

    model_config = ConfigDict(frozen=True)

    model: str
    version: int
    prefix: str
    """Its files' prefix in the tiered version: "" for the first tier, "tier1." ..."""
    spec: dict[str, object] | None = None
    """Its built-in architecture (the torch backend builds it); None for imported graphs."""
    calibrator: Calibrator | None = None
    threshold: float | None = None
    """Calibrated confidence under which a row goes to the next tier; None for the last."""

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    def confidence(self, probabilities: np.ndarray) -> np.ndarray:
        """Its calibrated confidence in each row's top class (the top probability when
        it has no calibrator: only the last tier, which never escalates, may lack one)."""
        if self.calibrator is not None:
            return self.calibrator.confidence(probabilities)
        top: np.ndarray = probabilities.max(axis=1)
        return top


class TierValidation(BaseModel):
    """What the thresholds did on the rows they were chosen on (and on the test rows)."""

    model_config = ConfigDict(frozen=True)

    rows: int
    accuracy: float
    """The cascade's accuracy."""
    last_accuracy: float
    """The last tier's alone: what the budget is measured from."""
    shares: list[float]
    """The share of rows each tier answered."""
    source: str
    """Which rows: the first tier's validation split, its test split, or a file."""


class TierPlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    members: list[TierMember]
    max_accuracy_loss: float
    chosen_on: TierValidation
    tested_on: TierValidation | None = None

    @property
    def thresholds(self) -> list[float]:
        return [m.threshold if m.threshold is not None else 0.0 for m in self.members[:-1]]


@dataclass(frozen=True)
class CascadeAnswer:
    """A batch's answers: each row's logits from the tier that answered it."""

    logits: np.ndarray
    tiers: np.ndarray
    """(N,) int8: the index of the tier that answered each row."""
    seconds: list[float] = field(default_factory=list)
    """Wall time each tier spent on the batch (its share of the cost)."""


def run_cascade(
    predictors: Sequence[PredictLogits],
    confidences: Sequence[Callable[[np.ndarray], np.ndarray]],
    thresholds: Sequence[float],
    *,
    x: np.ndarray,
) -> CascadeAnswer:
    """Answer ``x`` tier by tier: tier k sees only the rows every earlier tier escalated."""
    pending = np.arange(len(x))
    tiers = np.zeros(len(x), dtype="int8")
    logits: np.ndarray | None = None
    seconds = []
    for index, predict in enumerate(predictors):
        started = time.perf_counter()
        answered = predict(x if index == 0 else x[pending])
        seconds.append(time.perf_counter() - started)
        if logits is None:
            logits = np.array(answered, dtype="float32", copy=True)
        else:
            logits[pending] = answered
        tiers[pending] = index
        if index == len(predictors) - 1 or not len(pending):
            break
        confidence = confidences[index](softmax(np.asarray(answered, dtype="float64")))
        pending = pending[confidence < thresholds[index]]
        if not len(pending):
            break
    assert logits is not None
    return CascadeAnswer(logits=logits, tiers=tiers, seconds=seconds)


def choose_thresholds(
    confidences: Sequence[np.ndarray], right: Sequence[np.ndarray], max_accuracy_loss: float
) -> list[float]:
    """Thresholds for every tier but the last, from held-out rows: ``confidences[k]`` is
    tier k's calibrated confidence on each row, ``right[k]`` whether its answer was right."""
    tiers = len(right)
    target = float(np.mean(right[-1])) - max_accuracy_loss
    thresholds = [ESCALATE_ALL] * (tiers - 1)
    # right_after[k]: whether the cascade from tier k on answers each row right
    right_after = np.asarray(right[-1], dtype=bool)
    for k in range(tiers - 2, -1, -1):
        threshold = _lowest_threshold(confidences[k], right[k], right_after, target=target)
        thresholds[k] = threshold
        right_after = np.where(confidences[k] < threshold, right_after, right[k])
    return thresholds


def _lowest_threshold(
    confidence: np.ndarray, right_here: np.ndarray, right_after: np.ndarray, *, target: float
) -> float:
    """Lower the threshold row by row (most confident escalation first to go) while the
    accuracy stays at or above ``target``; the last threshold that kept it."""
    if not len(confidence):
        return ESCALATE_ALL
    order = np.argsort(-confidence, kind="stable")
    # keeping row order[i] at this tier changes the number right by this much
    gains = right_here[order].astype("int64") - right_after[order].astype("int64")
    right_counts = int(right_after.sum()) + np.cumsum(gains)
    accuracy = right_counts / len(confidence)
    sorted_confidence = confidence[order]
    # a threshold lies between distinct confidences: rows tied must stay or go together
    distinct = np.append(sorted_confidence[1:] != sorted_confidence[:-1], True)
    ok = accuracy >= target - 1e-12
    threshold = ESCALATE_ALL
    for i in range(len(order)):
        if not ok[i]:
            break
        if distinct[i]:
            threshold = float(sorted_confidence[i])
    return threshold


def validation_of(
    confidences: Sequence[np.ndarray],
    right: Sequence[np.ndarray],
    thresholds: Sequence[float],
    *,
    source: str,
) -> TierValidation:
    """What these thresholds do on these rows."""
    rows = len(right[-1])
    answered_by = np.full(rows, len(right) - 1)
    pending = np.ones(rows, dtype=bool)
    for k, threshold in enumerate(thresholds):
        stays = pending & (confidences[k] >= threshold)
        answered_by[stays] = k
        pending &= ~stays
    correct = np.choose(answered_by, [np.asarray(r, dtype=bool) for r in right])
    shares = [float(np.mean(answered_by == k)) if rows else 0.0 for k in range(len(right))]
    return TierValidation(
        rows=rows,
        accuracy=float(np.mean(correct)) if rows else 0.0,
        last_accuracy=float(np.mean(right[-1])) if rows else 0.0,
        shares=shares,
        source=source,
    )
