"""Columns a model must not learn from: row numbers, identifiers, and single-feature leaks.

A file sorted by its target with a row-number column (R's ``rownames``, pandas'
``Unnamed: 0``) hands the model the answer: on a price-sorted diamonds file the network
"learned" the row number to R² 0.9996. Such columns are found by what they hold (unique per
row, in the file's order or consecutive), not only by their names, and dropped with the
reason; ``data.keep`` keeps one that is a real feature.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from dnnops.data.media.detect import text_reason

ROW_NUMBER_NAMES = frozenset({"rownames", "index", "row", "rownum", "row_number", "row_id"})
"""Names R, pandas and spreadsheets give a row-number column."""
MIN_ROWS = 20
"""Fewer rows than this say nothing about uniqueness: nothing is dropped."""


@dataclass(frozen=True)
class Finding:
    column: str
    reason: str


def identifier_columns(frame: pd.DataFrame, keep: Sequence[str] = ()) -> list[Finding]:
    """Row numbers and identifiers among ``frame``'s columns (``keep`` excepted)."""
    found = []
    for name in frame.columns:
        if str(name) in keep:
            continue
        reason = _identifier_reason(str(name), frame[name])
        if reason is not None:
            found.append(Finding(str(name), reason))
    return found


def _identifier_reason(name: str, column: pd.Series) -> str | None:
    named = name.strip().lower()
    if named.startswith("unnamed:"):
        return "a column without a name, as pandas' saved index is (a row number)"
    values = column.dropna()
    if len(values) < MIN_ROWS or values.nunique() != len(values):
        return None
    if named in ROW_NUMBER_NAMES:
        return f"named like a row number ({name!r}) and distinct on every row"
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return _string_identifier(name, values)
    numbers = values.to_numpy(dtype="float64")
    if not np.all(numbers == np.round(numbers)):
        return None  # distinct measurements are common: a real feature
    if values.is_monotonic_increasing or values.is_monotonic_decreasing:
        return "a row number: distinct integers in the file's order"
    if numbers.max() - numbers.min() + 1 == len(numbers):
        return "a row number: consecutive integers, one per row"
    if named == "id" or named.endswith(("_id", "id")):
        return "an identifier: named like an id and distinct on every row"
    return None


def _string_identifier(name: str, values: pd.Series) -> str | None:
    """Why distinct strings are no feature; None for free text (a text input, not an id)."""
    if text_reason(values) is not None:
        return None
    if _dates(values):
        return (
            f"a timestamp, distinct on every row: no feature a model can carry into the "
            f"future; to train on the past and test on the future: data.split.by: {name}"
        )
    return "an identifier: a distinct text on every row, nothing to learn from"


def _dates(values: pd.Series) -> bool:
    """Whether (nearly) every value of a text column reads as a date or a time."""
    sample = values.astype(str).head(200)
    parsed = pd.to_datetime(sample, errors="coerce", utc=True, format="mixed")
    return bool(parsed.notna().mean() >= 0.95)


LEAK_SCORE = 0.99
"""One feature alone scoring this well on held-out rows is more likely a leak (the target
in another form, a value known only after the outcome) than a gift."""
BINS = 64
"""Quantile bins a number is cut into for the one-feature predictor."""
MAX_CATEGORIES = 200
"""A category column with more values than this is judged on its most common ones."""


@dataclass(frozen=True)
class Leak:
    column: str
    score: float
    metric: Literal["balanced_accuracy", "r2"]

    def message(self) -> str:
        return (
            f"feature {self.column!r} alone predicts the target ({self.metric} "
            f"{self.score:.4f} on held-out rows): a leak? (the target in another form, or "
            "a value known only after the outcome); drop it with data.schema.drop, or keep "
            "it knowingly"
        )


@dataclass(frozen=True)
class Labeled:
    """Rows of features with their target: one side of a split."""

    features: pd.DataFrame
    target: pd.Series


@dataclass(frozen=True)
class _Pair:
    """One feature on both sides: codes (or values) and targets, fitted and judged."""

    seen: np.ndarray
    seen_target: pd.Series
    unseen: np.ndarray
    unseen_target: pd.Series


def single_feature_leaks(train: Labeled, held_out: Labeled, *, regression: bool) -> list[Leak]:
    """Features that on their own, through a binned lookup (a curve for a number under
    regression) fitted on ``train``, predict ``held_out``'s target at least
    ``LEAK_SCORE`` well."""
    leaks = []
    for name in train.features.columns:
        column, new = train.features[name], held_out.features[name]
        fitted = _bins(column)
        codes = _Pair(_codes(column, fitted), train.target, _codes(new, fitted), held_out.target)
        if not regression:
            score = _balanced_accuracy_of_lookup(codes)
        elif isinstance(fitted, pd.Index):
            score = _r2_of_lookup(codes)
        else:
            values = _Pair(_numbers(column), train.target, _numbers(new), held_out.target)
            score = _r2_of_curve(values)
        if score >= LEAK_SCORE:
            leaks.append(Leak(str(name), score, "r2" if regression else "balanced_accuracy"))
    return leaks


def _numbers(column: pd.Series) -> np.ndarray:
    values: np.ndarray = pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64")
    return values


def _bins(column: pd.Series) -> np.ndarray | pd.Index:
    """Quantile edges for numbers, the most common values for anything else."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        numbers = column.to_numpy(dtype="float64")
        finite = numbers[np.isfinite(numbers)]
        if not len(finite):
            return np.zeros(0)
        edges: np.ndarray = np.unique(np.quantile(finite, np.linspace(0, 1, BINS + 1)[1:-1]))
        return edges
    common = column.astype(str).value_counts().index[:MAX_CATEGORIES]
    return pd.Index([str(v) for v in common])


def _codes(column: pd.Series, fitted: np.ndarray | pd.Index) -> np.ndarray:
    """A bin per row; missing values (and unseen categories) share the last code."""
    if isinstance(fitted, pd.Index):
        codes = fitted.get_indexer(pd.Index(column.astype(str)))
        return np.where(codes < 0, len(fitted), codes)
    numbers = column.to_numpy(dtype="float64")
    codes = np.searchsorted(fitted, numbers, side="right")
    return np.where(np.isfinite(numbers), codes, len(fitted) + 1)


def _r2_of_curve(pair: _Pair) -> float:
    """R² of the target read off a piecewise-linear curve through the binned means of a
    number: a smooth function of one feature scores near 1 with a few hundred rows."""
    x, y = pair.seen, pair.seen_target.to_numpy(dtype="float64")
    known = np.isfinite(x)
    if known.sum() < 2:
        return 0.0
    order = np.argsort(x[known], kind="stable")
    xs, ys = x[known][order], y[known][order]
    chunks = np.array_split(np.arange(len(xs)), min(BINS, len(xs)))
    centres = np.array([xs[c].mean() for c in chunks])
    means = np.array([ys[c].mean() for c in chunks])
    new_x = pair.unseen
    guess = np.where(np.isfinite(new_x), np.interp(new_x, centres, means), y.mean())
    return _r2(pair.unseen_target.to_numpy(dtype="float64"), guess)


def _r2(truth: np.ndarray, guess: np.ndarray) -> float:
    total = float(((truth - truth.mean()) ** 2).sum())
    return 0.0 if total == 0 else 1.0 - float(((truth - guess) ** 2).sum()) / total


def _r2_of_lookup(pair: _Pair) -> float:
    y = pair.seen_target.to_numpy(dtype="float64")
    size = int(max(pair.seen.max(initial=0), pair.unseen.max(initial=0))) + 1
    sums = np.bincount(pair.seen, weights=y, minlength=size)
    counts = np.bincount(pair.seen, minlength=size)
    means = np.where(counts > 0, sums / np.maximum(counts, 1), y.mean())
    return _r2(pair.unseen_target.to_numpy(dtype="float64"), means[pair.unseen])


def _balanced_accuracy_of_lookup(pair: _Pair) -> float:
    labels, y = np.unique(pair.seen_target.astype(str).to_numpy(), return_inverse=True)
    size = int(max(pair.seen.max(initial=0), pair.unseen.max(initial=0))) + 1
    table = np.zeros((size, len(labels)), dtype="int64")
    np.add.at(table, (pair.seen, y), 1)
    majority = np.bincount(y, minlength=len(labels)).argmax()
    answer = np.where(table.sum(axis=1) > 0, table.argmax(axis=1), majority)
    index = {label: i for i, label in enumerate(labels)}
    truth = np.array([index.get(v, -1) for v in pair.unseen_target.astype(str)])
    predicted = answer[pair.unseen]
    recalls = [float((predicted[truth == c] == c).mean()) for c in np.unique(truth[truth >= 0])]
    return float(np.mean(recalls)) if len(recalls) > 1 else 0.0
