"""Classification metrics as pure functions of labels and probabilities.

Written in numpy (each checked against scikit-learn in the tests): a monitoring report
that scores labels would otherwise spend a second importing scikit-learn.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dnnops.evaluate.decision import Decision, decide

ECE_BINS = 15


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    probs: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
    return probs


def classification_metrics(
    y_true: np.ndarray, proba: np.ndarray, decision: Decision | None = None
) -> dict[str, Any]:
    """Scalars (``accuracy``, ``balanced_accuracy``, ``min_recall``, ``macro_f1``,
    ``roc_auc``, ``log_loss``, ``expected_calibration_error``, ``confidence_mean``,
    ``max_fpr``, ``max_fnr``) plus per-class rates and the confusion matrix (rows: true
    class, columns: predicted), the answered class being ``decision``'s (argmax without
    one). ``balanced_accuracy`` (mean recall) and ``min_recall``
    (the worst class's) are over the classes present: on 3% positives a model that never
    answers the minority scores 0.97 accuracy but 0.5 and 0.
    ``confidence_mean`` (mean top probability) is the baseline live confidence is held to."""
    n_classes = proba.shape[1]
    y_pred = decide(proba, decision)
    matrix = confusion_matrix(y_true, y_pred, n_classes)
    fpr, fnr = per_class_error_rates(matrix)
    recalls = _present_recalls(matrix)
    return {
        "accuracy": float(np.mean(y_true == y_pred)) if len(y_true) else math.nan,
        "balanced_accuracy": float(recalls.mean()) if len(recalls) else math.nan,
        "min_recall": float(recalls.min()) if len(recalls) else math.nan,
        "macro_f1": macro_f1(matrix),
        "roc_auc": roc_auc(y_true, proba),
        "log_loss": float(-np.mean(np.log(_clipped(proba)[np.arange(len(y_true)), y_true]))),
        "expected_calibration_error": expected_calibration_error(y_true, proba),
        "confidence_mean": float(proba.max(axis=1).mean()),
        "max_fpr": float(max(fpr)),
        "max_fnr": float(max(fnr)),
        "fpr_per_class": fpr,
        "fnr_per_class": fnr,
        "confusion_matrix": matrix.tolist(),
    }


def _present_recalls(matrix: np.ndarray) -> np.ndarray:
    """Recall of each class that has true rows (as scikit-learn's balanced accuracy)."""
    support = matrix.sum(axis=1)
    present = support > 0
    recalls: np.ndarray = np.diag(matrix)[present] / support[present]
    return recalls


def _clipped(proba: np.ndarray) -> np.ndarray:
    """Probabilities kept off 0 (log loss is infinite there) and renormalized to sum to 1."""
    clipped = np.clip(proba, 1e-7, 1.0)
    normalized: np.ndarray = clipped / clipped.sum(axis=1, keepdims=True)
    return normalized


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted."""
    cells = np.asarray(y_true, dtype="int64") * classes + np.asarray(y_pred, dtype="int64")
    return np.bincount(cells, minlength=classes * classes).reshape(classes, classes)


def macro_f1(matrix: np.ndarray) -> float:
    """Unweighted mean F1 over all classes; a class never true nor predicted scores 0."""
    tp = np.diag(matrix).astype("float64")
    denominator = matrix.sum(axis=0) + matrix.sum(axis=1)
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    return float(f1.mean())


def binary_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """Mann-Whitney: P(score of a positive > score of a negative), ties counting half."""
    ranks = average_ranks(scores)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]
    mean_rank = (starts + ends + 1) / 2  # ranks start+1 .. end
    ranks = np.empty(len(values), dtype="float64")
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def roc_auc(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Binary: AUC of the positive class; multiclass: macro one-vs-rest over present classes.
    NaN when only one class is present (AUC is undefined)."""
    present = np.unique(y_true)
    if len(present) < 2:
        return math.nan
    if proba.shape[1] == 2:
        return binary_auc(y_true == 1, proba[:, 1])
    return float(np.mean([binary_auc(y_true == c, proba[:, c]) for c in present]))


def per_class_error_rates(matrix: np.ndarray) -> tuple[list[float], list[float]]:
    """FPR = FP / (FP + TN) and FNR = FN / (FN + TP) per class, one-vs-rest."""
    total = matrix.sum()
    tp = np.diag(matrix).astype("float64")
    fn = matrix.sum(axis=1) - tp
    fp = matrix.sum(axis=0) - tp
    tn = total - tp - fn - fp
    fpr = np.divide(fp, fp + tn, out=np.zeros_like(fp), where=(fp + tn) > 0)
    fnr = np.divide(fn, fn + tp, out=np.zeros_like(fn), where=(fn + tp) > 0)
    return [float(v) for v in fpr], [float(v) for v in fnr]


def expected_calibration_error(
    y_true: np.ndarray, proba: np.ndarray, bins: int = ECE_BINS
) -> float:
    """Weighted mean |accuracy - confidence| over equal-width confidence bins (Guo et al. 2017)."""
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_true).astype("float64")
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            error += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(error)


def group_accuracies(
    y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray
) -> dict[str, float]:
    """Accuracy within each group (fairness): the gap is max minus min."""
    out = {}
    for group in sorted({str(g) for g in groups}):
        members = np.array([str(g) == group for g in groups])
        out[group] = float((y_true[members] == y_pred[members]).mean())
    return out


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, R² and MAPE (over the rows whose target is not 0), in the target's units."""
    truth = np.asarray(y_true, dtype="float64")
    error = np.asarray(y_pred, dtype="float64").reshape(-1) - truth
    total = float(((truth - truth.mean()) ** 2).sum())
    nonzero = truth != 0
    return {
        "mae": float(np.abs(error).mean()),
        "rmse": float(np.sqrt((error**2).mean())),
        "r2": 1.0 - float((error**2).sum()) / total if total > 0 else float("nan"),
        "mape": float(np.abs(error[nonzero] / truth[nonzero]).mean())
        if nonzero.any()
        else float("nan"),
    }
