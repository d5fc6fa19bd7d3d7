"""Accuracy under covariate shift, from agreement.

Calibrated confidence (CBPE) says how often the model is right on inputs like its held-out
rows; when the inputs move, it stays confident while the accuracy falls. A panel of small
networks, each trained on a random half of the numeric features, disagrees with the served
model where the inputs moved: the rate at which each pair of them agree moves along a line
with their accuracy ("agreement on the line", Baek et al. 2022, ALine-D). The panel's pairs
give that line from their agreement on held-out rows and on the window, and the served
model's held-out accuracy is carried along it to the window.

Members read the numeric features as the served model reads them (its preprocessing's
offset, scale and fill for a missing value), from the inputs the prediction log keeps: fed
differently scaled features, a panel disagrees over shifts the served model does not feel.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

MEMBERS = 6
FEATURE_SHARE = 0.5
HIDDEN = 32
MAX_ITER = 60
"""Adam epochs of each member: enough to agree with the served model on held-out rows,
few enough that a panel of six costs about a second on a table of 2,000 rows."""
MAX_FIT_ROWS = 2000
MIN_ROWS = 20
"""Fewer held-out rows than this: no panel (as no calibrator)."""
MIN_SPREAD = 0.1
"""Pairs whose held-out agreements (probit) spread less than this give no slope: the
line is taken parallel to the diagonal through their mean shift instead."""

STANDARD_NORMAL = NormalDist()


class Member(BaseModel):
    model_config = ConfigDict(frozen=True)
    features: list[int]
    """Indices into the panel's features."""
    hidden_weight: list[list[float]]
    hidden_bias: list[float]
    out_weight: list[list[float]]
    out_bias: list[float]

    def predict(self, standardized: np.ndarray) -> np.ndarray:
        """Class index of each row."""
        x = standardized[:, self.features]
        hidden = np.maximum(x @ np.asarray(self.hidden_weight).T + self.hidden_bias, 0.0)
        logits = hidden @ np.asarray(self.out_weight).T + self.out_bias
        found: np.ndarray = logits.argmax(axis=1)
        return found


class AgreementPanel(BaseModel):
    """Members, and what they and the served model did on the held-out rows."""

    model_config = ConfigDict(frozen=True)
    features: list[str]
    offset: list[float]
    scale: list[float]
    fill: list[float]
    """A missing value's stand-in, before scaling (as the preprocessing fills it)."""
    members: list[Member]
    held_out_rows: int
    held_out_accuracy: float
    """The served model's accuracy on the held-out rows."""
    held_out_agreement: list[float]
    """Agreement of each pair (served model first, then the members; see ``pairs``)."""

    def standardize(self, frame: pd.DataFrame) -> np.ndarray:
        rows = frame[self.features].to_numpy(dtype="float64", na_value=np.nan)
        filled = np.where(np.isfinite(rows), rows, np.asarray(self.fill))
        scaled: np.ndarray = (filled - np.asarray(self.offset)) / np.asarray(self.scale)
        return scaled

    def predictions(self, frame: pd.DataFrame, served: np.ndarray) -> np.ndarray:
        """(members + 1, N) class indices: the served model's, then each member's."""
        standardized = self.standardize(frame)
        return np.stack([served, *(m.predict(standardized) for m in self.members)])


def pairs(size: int) -> list[tuple[int, int]]:
    return list(itertools.combinations(range(size), 2))


def agreement_counts(predictions: np.ndarray) -> list[int]:
    """Rows on which each pair agrees: sums that add up across windows."""
    return [int((predictions[i] == predictions[j]).sum()) for i, j in pairs(len(predictions))]


def numeric_features(frame: pd.DataFrame, excluded: frozenset[str]) -> list[str]:
    return [
        str(c)
        for c in frame.columns
        if c not in excluded
        and pd.api.types.is_numeric_dtype(frame[c])
        and not pd.api.types.is_bool_dtype(frame[c])
        and np.nanstd(frame[c].to_numpy(dtype="float64", na_value=np.nan)) > 0
    ]


@dataclass(frozen=True)
class LabeledFrame:
    frame: pd.DataFrame
    labels: np.ndarray
    """Class indices."""


@dataclass(frozen=True)
class Scaling:
    """How the served model's preprocessing reads one numeric feature."""

    offset: float
    scale: float
    fill: float


def fit_panel(
    training: LabeledFrame,
    held_out: LabeledFrame,
    served: np.ndarray,
    *,
    classes: int,
    scaling: Mapping[str, Scaling] | None = None,
    excluded: frozenset[str] = frozenset(),
    members: int = MEMBERS,
    seed: int = 0,
) -> AgreementPanel | None:
    """A panel for a classifier whose held-out predictions (class indices) are ``served``,
    reading each feature as ``scaling`` says (standardized on the training rows where it is
    not given); None when the table has fewer than two numeric features or too few
    held-out rows."""
    train, train_y, held_out_y = training.frame, training.labels, held_out.labels
    features = numeric_features(train, excluded)
    if scaling is not None:
        features = [f for f in features if f in scaling]
    if members < 2 or len(features) < 2 or len(held_out_y) < MIN_ROWS or classes < 2:
        return None
    rng = np.random.default_rng(seed)
    if len(train) > MAX_FIT_ROWS:
        picked = rng.choice(len(train), MAX_FIT_ROWS, replace=False)
        train, train_y = train.iloc[picked], train_y[picked]
    rows = train[features].to_numpy(dtype="float64", na_value=np.nan)
    if scaling is not None:
        read = [scaling[f] for f in features]
        offset = np.array([s.offset for s in read])
        scale = np.array([s.scale if s.scale else 1.0 for s in read])
        fill = np.array([s.fill for s in read])
    else:
        offset = fill = np.nan_to_num(np.nanmean(rows, axis=0))
        scale = np.nan_to_num(np.nanstd(rows, axis=0))
        scale = np.where(scale > 0, scale, 1.0)
    panel = AgreementPanel(
        features=features,
        offset=offset.tolist(),
        scale=scale.tolist(),
        fill=fill.tolist(),
        members=[],
        held_out_rows=len(held_out_y),
        held_out_accuracy=float((served == held_out_y).mean()),
        held_out_agreement=[],
    )
    x = panel.standardize(train)
    size = max(1, round(len(features) * FEATURE_SHARE))
    subsets = [sorted(rng.permutation(len(features))[:size]) for _ in range(members)]
    fitted = [
        _fit_member(x, train_y, subset, classes=classes, seed=seed + i)
        for i, subset in enumerate(subsets)
    ]
    panel = panel.model_copy(update={"members": fitted})
    counts = agreement_counts(panel.predictions(held_out.frame, served))
    return panel.model_copy(update={"held_out_agreement": [c / len(held_out_y) for c in counts]})


def _fit_member(
    x: np.ndarray, y: np.ndarray, features: list[int], *, classes: int, seed: int
) -> Member:
    """scikit-learn's MLP on ``features``; its weights are kept as numbers (no pickle).
    (Imported here: a server reads panels, never fits one, and starts faster without it.)"""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        net = MLPClassifier((HIDDEN,), max_iter=MAX_ITER, random_state=seed).fit(x[:, features], y)
    out_weight, out_bias = net.coefs_[1].T, net.intercepts_[1]
    if out_weight.shape[0] == 1:  # two classes: one logit, read as [0, z]
        out_weight = np.vstack([np.zeros_like(out_weight), out_weight])
        out_bias = np.concatenate([[0.0], out_bias])
    full_weight = np.zeros((classes, HIDDEN))
    full_bias = np.full(classes, -1e9)  # a class missing from the training rows is never said
    seen = net.classes_.astype(int)
    full_weight[seen], full_bias[seen] = out_weight, out_bias
    return Member(
        features=features,
        hidden_weight=net.coefs_[0].T.tolist(),
        hidden_bias=net.intercepts_[0].tolist(),
        out_weight=full_weight.tolist(),
        out_bias=full_bias.tolist(),
    )


def _probit(agreeing: float, rows: int) -> float:
    """The probit of a rate, smoothed so that 0 and 1 stay finite."""
    return STANDARD_NORMAL.inv_cdf((agreeing + 0.5) / (rows + 1))


def estimate_accuracy(panel: AgreementPanel, rows: int, counts: list[int]) -> float | None:
    """The served model's accuracy on a window where the pairs agreed ``counts`` times in
    ``rows``: its held-out accuracy carried along the pairs' agreement line (probit scale)."""
    if rows <= 0 or len(counts) != len(panel.held_out_agreement):
        return None
    held = panel.held_out_rows
    xs = np.array([_probit(a * held, held) for a in panel.held_out_agreement])
    ys = np.array([_probit(c, rows) for c in counts])
    if xs.std() >= MIN_SPREAD:
        slope, bias = np.polyfit(xs, ys, 1)
    else:
        slope, bias = 1.0, float((ys - xs).mean())
    accuracy = _probit(panel.held_out_accuracy * held, held)
    found = STANDARD_NORMAL.cdf(float(slope * accuracy + bias))
    return found if math.isfinite(found) else None
