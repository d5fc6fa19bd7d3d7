"""The agreement panel: members on halves of a table's numeric features, whose agreement
with the served model carries its held-out accuracy to a window whose inputs moved."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from dnnops.evaluate.agreement import (
    AgreementPanel,
    LabeledFrame,
    agreement_counts,
    estimate_accuracy,
    fit_panel,
)


def table(rows: int, seed: int, shift: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    """Eight numeric features (one with gaps), a category and a row number. The class is
    the sum of the first four and the square of the fifth: a linear model learns it where
    the fifth is near 0, and fails where ``shift`` moved the last four."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(0, 1, (rows, 4))
    noise = rng.normal(0, 1, (rows, 4)) + shift
    labels = (signal.sum(axis=1) + noise[:, 0] ** 2 - 1 > 0).astype(int)
    frame = pd.DataFrame(np.hstack([signal, noise]), columns=[f"x{i}" for i in range(8)])
    frame.loc[rng.random(rows) < 0.1, "x5"] = np.nan
    frame["shop"] = rng.choice(["north", "south"], rows)
    frame["row"] = np.arange(rows)
    return frame, labels


def served_model(frame: pd.DataFrame, labels: np.ndarray) -> LogisticRegression:
    return LogisticRegression().fit(frame[[f"x{i}" for i in range(8)]].fillna(0.0), labels)


def predict(model: LogisticRegression, frame: pd.DataFrame) -> np.ndarray:
    found: np.ndarray = model.predict(frame[[f"x{i}" for i in range(8)]].fillna(0.0))
    return found


def test_a_panel_estimates_accuracy_on_held_out_like_rows_and_follows_a_shift() -> None:
    train, train_y = table(3000, seed=1)
    held, held_y = table(800, seed=2)
    model = served_model(train, train_y)
    panel = fit_panel(
        LabeledFrame(train.drop(columns="row"), train_y),
        LabeledFrame(held, held_y),
        predict(model, held),
        classes=2,
        excluded=frozenset({"x7"}),
    )
    assert panel is not None
    assert "x7" not in panel.features and "shop" not in panel.features, "sensitive, category"
    assert len(panel.members) == 6 and len(panel.held_out_agreement) == 21  # 7 choose 2
    stored = AgreementPanel.model_validate_json(panel.model_dump_json())

    like, like_y = table(1000, seed=3)
    served = predict(model, like)
    truth = float((served == like_y).mean())
    counts = agreement_counts(stored.predictions(like, served))
    estimate = estimate_accuracy(stored, len(like), counts)
    assert estimate is not None and abs(estimate - truth) < 0.03, (estimate, truth)

    moved, moved_y = table(1000, seed=4, shift=2.0)
    served = predict(model, moved)
    truth_moved = float((served == moved_y).mean())
    assert truth_moved < truth - 0.05, "the shift costs the model accuracy"
    counts = agreement_counts(stored.predictions(moved, served))
    estimate = estimate_accuracy(stored, len(moved), counts)
    assert estimate is not None and estimate < truth - 0.03, (estimate, truth_moved, truth)
    features = moved[[f"x{i}" for i in range(8)]].fillna(0.0)
    confidence = float(model.predict_proba(features).max(axis=1).mean())
    assert abs(estimate - truth_moved) < abs(confidence - truth_moved) - 0.05, (
        "agreement follows the shift further than the model's own confidence",
        estimate,
        confidence,
        truth_moved,
    )


def test_no_panel_without_two_numeric_features_or_enough_held_out_rows() -> None:
    train, train_y = table(300, seed=1)
    held, held_y = table(100, seed=2)
    served = predict(served_model(train, train_y), held)
    few = LabeledFrame(held.iloc[:10], held_y[:10])
    assert fit_panel(LabeledFrame(train, train_y), few, served[:10], classes=2) is None
    words = LabeledFrame(train[["shop", "x0"]], train_y)
    assert fit_panel(words, LabeledFrame(held, held_y), served, classes=2) is None
    assert (
        estimate_accuracy(
            fit_panel(LabeledFrame(train, train_y), LabeledFrame(held, held_y), served, classes=2)
            or pytest_fail(),
            0,
            [],
        )
        is None
    )


def pytest_fail() -> AgreementPanel:
    raise AssertionError("a panel was expected")
