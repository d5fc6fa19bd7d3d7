"""A classifier's calibrator, fitted at registration on held-out rows, so that live
confidence says how often the model is right: the basis of accuracy estimated before any
label arrives.

Two methods, as the literature compares them (Guo et al. 2017): temperature scaling (one
parameter: logits divided by T, so the ranking of classes never changes) and isotonic
regression of correctness on the top probability (monotone, more flexible, needs more
rows). Both are fitted on one half of the rows and judged on the other, both ways; the one
with the lower Brier score of correctness wins and is refitted on all rows. The
average-thresholded-confidence threshold (Garg et al. 2022) is chosen on the same rows:
the confidence above which as many rows lie as were right.

Stored as JSON with the version (``calibration.json``): numbers only, never pickle.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

MIN_ROWS = 20
"""Fewer held-out rows than this: no calibrator (an estimate from it would be noise)."""
SEED = 0


class Calibrator(BaseModel):
    model_config = ConfigDict(frozen=True)

    method: Literal["temperature", "isotonic"]
    temperature: float = 1.0
    isotonic_x: list[float] = []
    """Top probabilities (ascending) at which the isotonic map's value is given."""
    isotonic_y: list[float] = []
    atc_threshold: float
    """Calibrated confidence above which the share of rows is the expected accuracy."""
    rows: int
    accuracy: float
    """Accuracy on the rows it was fitted on."""
    brier_before: float
    brier_after: float
    """Brier score of top-1 correctness before and after, on held-out halves."""
    held_out_error: float = 0.0
    """The largest |mean calibrated confidence - accuracy| on a held-out half: how far the
    calibration itself may be off, added to the estimate's sampling interval."""
    shrink: float = 1.0
    """Applied last: brings the mean confidence on the fitted rows down to the Laplace
    estimate of their accuracy, (right + 1) / (rows + 2). A model right on all 40 rows of a
    small validation split is not right 100% of the time, and a calibrator fitted there
    would say so forever."""

    def confidence(self, probabilities: np.ndarray) -> np.ndarray:
        """The calibrated probability that each row's top class is right."""
        probabilities = np.asarray(probabilities, dtype="float64")
        if self.method == "temperature":
            calibrated = _top(_scaled(probabilities, self.temperature))
        else:
            calibrated = np.interp(_top(probabilities), self.isotonic_x, self.isotonic_y)
        shrunk: np.ndarray = calibrated * self.shrink
        return shrunk


def fit_calibrator(probabilities: np.ndarray, labels: np.ndarray) -> Calibrator | None:
    """The better calibrator for these held-out rows (``labels``: class indices)."""
    probabilities = np.asarray(probabilities, dtype="float64")
    labels = np.asarray(labels)
    if len(labels) < MIN_ROWS or probabilities.ndim != 2 or probabilities.shape[1] < 2:
        return None
    correct = (probabilities.argmax(axis=1) == labels).astype("float64")
    order = np.random.default_rng(SEED).permutation(len(labels))
    halves = (order[: len(order) // 2], order[len(order) // 2 :])
    scores: dict[str, list[float]] = {"temperature": [], "isotonic": []}
    gaps: dict[str, list[float]] = {"temperature": [], "isotonic": []}
    before = []
    for fit_on, judge_on in (halves, halves[::-1]):
        before.append(_brier(_top(probabilities[judge_on]), correct[judge_on]))
        for method in scores:
            fitted = _fit(method, probabilities[fit_on], labels[fit_on])
            confidence = fitted.confidence(probabilities[judge_on])
            scores[method].append(_brier(confidence, correct[judge_on]))
            gaps[method].append(abs(float(confidence.mean() - correct[judge_on].mean())))
    method = min(scores, key=lambda m: float(np.mean(scores[m])))
    chosen = _fit(method, probabilities, labels)
    return chosen.model_copy(
        update={
            "brier_before": float(np.mean(before)),
            "brier_after": float(np.mean(scores[method])),
            "held_out_error": max(gaps[method]),
        }
    )


def _fit(method: str, probabilities: np.ndarray, labels: np.ndarray) -> Calibrator:
    correct = (probabilities.argmax(axis=1) == labels).astype("float64")
    accuracy = float(correct.mean())
    if method == "temperature":
        temperature = _temperature(probabilities, labels)
        fitted = Calibrator(
            method="temperature",
            temperature=temperature,
            atc_threshold=0.0,
            rows=len(labels),
            accuracy=accuracy,
            brier_before=0.0,
            brier_after=0.0,
        )
    else:
        from sklearn.isotonic import IsotonicRegression

        top = _top(probabilities)
        regression = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        regression.fit(top, correct)
        fitted = Calibrator(
            method="isotonic",
            isotonic_x=[float(x) for x in regression.X_thresholds_],
            isotonic_y=[float(y) for y in regression.y_thresholds_],
            atc_threshold=0.0,
            rows=len(labels),
            accuracy=accuracy,
            brier_before=0.0,
            brier_after=0.0,
        )
    confidence = fitted.confidence(probabilities)
    laplace = (correct.sum() + 1.0) / (len(correct) + 2.0)
    if confidence.mean() > laplace:
        fitted = fitted.model_copy(update={"shrink": float(laplace / confidence.mean())})
        confidence = fitted.confidence(probabilities)
    threshold = float(np.quantile(confidence, 1.0 - accuracy)) if accuracy < 1.0 else 0.0
    return fitted.model_copy(update={"atc_threshold": threshold})


def _temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """T minimising the negative log-likelihood of the labels (a bounded 1-D search)."""
    from scipy.optimize import minimize_scalar

    logits = np.log(np.clip(probabilities, 1e-12, 1.0))
    rows = np.arange(len(labels))

    def nll(log_t: float) -> float:
        scaled = logits / np.exp(log_t)
        scaled -= scaled.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(scaled).sum(axis=1))
        return float(-(scaled[rows, labels] - log_norm).mean())

    found = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(found.x))


def _scaled(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    logits = np.log(np.clip(probabilities, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    scaled: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
    return scaled


def _top(probabilities: np.ndarray) -> np.ndarray:
    top: np.ndarray = probabilities.max(axis=1)
    return top


def _brier(confidence: np.ndarray, correct: np.ndarray) -> float:
    return float(np.mean((confidence - correct) ** 2))
