"""The scores a network must be judged against: a trivial baseline and a quick strong one.

A network's accuracy means little alone: 0.967 on 3% positives is what always answering
"no" scores, and a tuned MLP that trails gradient boosting by 10% costs more to serve for
less. Each evaluation carries both: the majority class (or the mean) and scikit-learn's
HistGradientBoosting fitted on the same training rows, scored on the same test rows.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from dnnops.evaluate.metrics import classification_metrics, regression_metrics

if TYPE_CHECKING:  # the report imports this module: listing versions must not load pandas
    import pandas as pd

TRIVIAL = "trivial"
STRONG = "hist_gradient_boosting"
MAX_CATEGORIES = 250
"""HistGradientBoosting takes at most 255 categories a feature: the rest read as missing."""
MAX_TRAIN_ROWS = 200_000
"""Rows the strong baseline is fitted on at most (a sample beyond): it is a yardstick,
not the model, and must stay quick."""


@dataclass(frozen=True)
class Rows:
    """Raw features (a table) and targets: class indices, or numbers for regression."""

    x: pd.DataFrame
    y: np.ndarray


def trivial_baseline(train_y: np.ndarray, test_y: np.ndarray, *, classes: int) -> dict[str, float]:
    """The majority class's scores (classification, ``classes`` > 0) or the mean's."""
    if classes == 0:
        guess = np.full(len(test_y), float(np.mean(train_y)))
        return regression_metrics(test_y, guess)
    shares = np.bincount(train_y.astype("int64"), minlength=classes) / max(len(train_y), 1)
    proba = np.tile(shares, (len(test_y), 1))
    return _scalars(classification_metrics(test_y.astype("int64"), proba))


def strong_baseline(
    train: Rows, test: Rows, *, classes: int, seed: int = 0, balanced: bool = False
) -> dict[str, float]:
    """HistGradientBoosting with scikit-learn's defaults, categories as categories, and
    ``balanced`` class weights when the network has them too (the same footing on a rare
    class); ``fit_seconds`` says what it cost."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    train_x, test_x = _encoded(train.x, test.x)
    y = train.y
    if len(train_x) > MAX_TRAIN_ROWS:
        rows = np.random.default_rng(seed).choice(len(train_x), MAX_TRAIN_ROWS, replace=False)
        train_x, y = train_x.iloc[rows], y[rows]
    started = time.perf_counter()
    if classes == 0:
        regressor = HistGradientBoostingRegressor(
            categorical_features="from_dtype", random_state=seed
        )
        regressor.fit(train_x, y)
        scores = regression_metrics(test.y, regressor.predict(test_x))
    else:
        classifier = HistGradientBoostingClassifier(
            categorical_features="from_dtype",
            random_state=seed,
            class_weight="balanced" if balanced else None,
        )
        classifier.fit(train_x, y.astype("int64"))
        proba = np.zeros((len(test_x), classes))
        proba[:, classifier.classes_.astype("int64")] = classifier.predict_proba(test_x)
        scores = _scalars(classification_metrics(test.y.astype("int64"), proba))
    scores["fit_seconds"] = time.perf_counter() - started
    return scores


def _encoded(train: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Numbers as float, everything else as a pandas category of the training part's most
    common values (others missing), as HistGradientBoosting's ``from_dtype`` wants."""
    import pandas as pd

    out_train: dict[str, pd.Series] = {}
    out_test: dict[str, pd.Series] = {}
    for name in train.columns:
        column = train[name]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            out_train[name] = column.astype("float64")
            out_test[name] = pd.to_numeric(test[name], errors="coerce").astype("float64")
            continue
        common = [str(v) for v in column.dropna().astype(str).value_counts().index]
        known = common[:MAX_CATEGORIES]
        out_train[name] = _categories(column, known)
        out_test[name] = _categories(test[name], known)
    return (
        pd.DataFrame(out_train, index=train.index),
        pd.DataFrame(out_test, index=test.index),
    )


def _categories(column: pd.Series, known: list[str]) -> pd.Series:
    import pandas as pd

    text = column.astype(str).where(column.notna())
    kept = text.where(text.isin(known))  # rare and unseen values read as missing
    return pd.Series(pd.Categorical(kept, categories=known), index=column.index)


def _scalars(metrics: dict[str, object]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, float)}


PrimaryMetric = Literal["mae", "roc_auc", "balanced_accuracy"]


def primary_metric(task: str, classes: int) -> PrimaryMetric:
    """The one number a model and its baselines are compared on: MAE for a regressor, ROC
    AUC for two classes (threshold-free, honest under imbalance), balanced accuracy else."""
    if task == "regression":
        return "mae"
    return "roc_auc" if classes == 2 else "balanced_accuracy"


def comparison(
    model: dict[str, float], strong: dict[str, float], metric: PrimaryMetric
) -> dict[str, float]:
    """``beats_baseline`` (1 when the network scores at least as well as gradient boosting
    on ``metric``, else 0: a gate can ask for it) and the gap in ``metric``'s terms:
    ``baseline_mae_ratio`` (model MAE over the baseline's: 1.05 is 5% worse) or
    ``baseline_gap`` (the model's score minus the baseline's)."""
    mine, theirs = model.get(metric, math.nan), strong.get(metric, math.nan)
    if math.isnan(mine) or math.isnan(theirs):
        return {}
    if metric == "mae":
        ratio = mine / theirs if theirs > 0 else math.inf if mine > 0 else 1.0
        return {"beats_baseline": float(mine <= theirs), "baseline_mae_ratio": ratio}
    return {"beats_baseline": float(mine >= theirs), "baseline_gap": mine - theirs}
