"""A baseline beside every score: the trivial one and gradient boosting on the same rows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dnnops.evaluate.baseline import (
    Rows,
    comparison,
    primary_metric,
    strong_baseline,
    trivial_baseline,
)


def _table(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "area": rng.uniform(30, 200, rows),
            "district": rng.choice(["north", "south", None], rows),
            "code": [f"k{i % 400}" for i in range(rows)],  # more categories than trees take
        }
    )
    frame.loc[rng.random(rows) < 0.05, "area"] = np.nan
    price = 2.5 * frame["area"].fillna(100) + np.where(frame["district"] == "north", 80, 0)
    return frame, (price + rng.normal(0, 10, rows)).to_numpy()


def test_the_trivial_baseline_is_the_majority_or_the_mean() -> None:
    train_y, test_y = np.array([0] * 97 + [1] * 3), np.array([0] * 29 + [1])
    scores = trivial_baseline(train_y, test_y, classes=2)
    assert scores["accuracy"] == pytest.approx(29 / 30)
    assert scores["balanced_accuracy"] == 0.5 and scores["min_recall"] == 0.0
    assert scores["roc_auc"] == 0.5
    numbers = trivial_baseline(np.array([1.0, 3.0]), np.array([2.0, 4.0]), classes=0)
    assert numbers["mae"] == 1.0


def test_gradient_boosting_on_a_users_table_with_gaps_and_many_categories() -> None:
    frame, price = _table(1200, seed=0)
    train, test = Rows(frame.iloc[:1000], price[:1000]), Rows(frame.iloc[1000:], price[1000:])
    scores = strong_baseline(train, test, classes=0)
    mean = trivial_baseline(price[:1000], price[1000:], classes=0)
    assert scores["r2"] > 0.9 and scores["mae"] < mean["mae"] / 4
    assert scores["fit_seconds"] > 0
    labels = (price > np.median(price)).astype("int64")
    classified = strong_baseline(
        Rows(frame.iloc[:1000], labels[:1000]), Rows(frame.iloc[1000:], labels[1000:]), classes=2
    )
    assert classified["roc_auc"] > 0.9


def test_the_comparison_is_on_the_tasks_primary_metric() -> None:
    assert primary_metric("regression", 0) == "mae"
    assert primary_metric("classification", 2) == "roc_auc"
    assert primary_metric("classification", 5) == "balanced_accuracy"
    worse = comparison({"mae": 105.0}, {"mae": 100.0}, "mae")
    assert worse == {"beats_baseline": 0.0, "baseline_mae_ratio": 1.05}
    better = comparison({"roc_auc": 0.91}, {"roc_auc": 0.9}, "roc_auc")
    assert better["beats_baseline"] == 1.0 and better["baseline_gap"] == pytest.approx(0.01)
    assert comparison({"roc_auc": math.nan}, {"roc_auc": 0.9}, "roc_auc") == {}
