"""The numpy metrics agree with scikit-learn's on any labels and probabilities."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics

from dnnops.evaluate.metrics import classification_metrics


def present_labels(y_true: np.ndarray) -> list[int]:
    return [int(c) for c in np.unique(y_true)]


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 5), st.integers(2, 60), st.integers(0, 10_000), st.booleans())
def test_metrics_match_scikit_learn(classes: int, rows: int, seed: int, coarse: bool) -> None:
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, classes, rows)
    proba = rng.dirichlet(np.ones(classes), rows)
    if coarse:  # ties in the scores, as a small model's rounded outputs give
        proba = np.round(proba, 1) + 1e-3
        proba /= proba.sum(axis=1, keepdims=True)
    ours = classification_metrics(y_true, proba)
    labels = list(range(classes))
    y_pred = proba.argmax(axis=1)
    assert ours["accuracy"] == pytest.approx(metrics.accuracy_score(y_true, y_pred))
    assert (
        ours["confusion_matrix"] == metrics.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    )
    assert ours["macro_f1"] == pytest.approx(
        metrics.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    )
    with warnings.catch_warnings():  # scikit-learn warns when a class is never true
        warnings.simplefilter("ignore")
        balanced = metrics.balanced_accuracy_score(y_true, y_pred)
    assert ours["balanced_accuracy"] == pytest.approx(balanced)
    recalls = metrics.recall_score(y_true, y_pred, labels=present_labels(y_true), average=None)
    assert ours["min_recall"] == pytest.approx(recalls.min())
    clipped = np.clip(proba, 1e-7, 1.0)
    clipped /= clipped.sum(axis=1, keepdims=True)
    assert ours["log_loss"] == pytest.approx(metrics.log_loss(y_true, clipped, labels=labels))
    present = np.unique(y_true)
    if len(present) < 2:
        assert np.isnan(ours["roc_auc"])
    elif classes == 2:
        assert ours["roc_auc"] == pytest.approx(metrics.roc_auc_score(y_true, proba[:, 1]))
    else:
        expected = np.mean([metrics.roc_auc_score(y_true == c, proba[:, c]) for c in present])
        assert ours["roc_auc"] == pytest.approx(expected)
