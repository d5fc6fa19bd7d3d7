"""Reference profiles: per-feature distributions saved with the data for drift monitoring.

Numeric features keep 101 percentiles (enough for KS and Wasserstein distances from
quantile functions) and counts on decile bins (for PSI). Categories keep their
frequencies. Tensor inputs are profiled through per-instance summaries (mean, std),
since per-pixel drift tests are noise.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from dnnops.data.dataset import Dataset
from dnnops.data.pca import PcaProfile, fit_pca_profile
from dnnops.data.schema import Schema, category_key
from dnnops.data.selection import Cells, counts_in_bins, order_statistics, sampled_cells
from dnnops.parallel import column_map

PERCENTILES = np.linspace(0.0, 100.0, 101)


class FeatureProfile(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    kind: Literal["numeric", "category"]
    count: int
    null_count: int
    mean: float | None = None
    std: float | None = None
    percentiles: list[float] | None = None
    bin_edges: list[float] | None = None
    """Inner edges of the decile bins; ``len(bin_edges) + 1`` open-ended bins."""
    bin_counts: list[int] | None = None
    frequencies: dict[str, int] | None = None


class Profile(BaseModel):
    model_config = ConfigDict(frozen=True)
    rows: int
    features: list[FeatureProfile]
    target: dict[str, int] | None = None
    """A classifier's training labels: how often each class came."""
    target_values: FeatureProfile | None = None
    """A regressor's training target as a numeric profile."""
    predicted_values: FeatureProfile | None = None
    """A regressor's own predictions on its test split (set at registration): live
    predictions drift from these. The target itself is a biased reference, since a model
    predicts a narrower spread than the truth (by its R²)."""
    pca: PcaProfile | None = None
    """The joint distribution of the numeric features, for multivariate drift."""

    @property
    def prediction_reference(self) -> FeatureProfile | None:
        """What a regressor's live predictions are compared with: its test-split
        predictions, else (registered without evaluation data) the training target."""
        return self.predicted_values or self.target_values

    def feature(self, name: str) -> FeatureProfile:
        for feature in self.features:
            if feature.name == name:
                return feature
        raise KeyError(name)


def build_profile(
    dataset: Dataset, schema: Schema, descriptors: pd.DataFrame | None = None
) -> Profile:
    """Profile every feature of ``dataset`` the way ``schema`` types it; an image or text
    model's features are its inputs' ``descriptors`` (brightness, length, ...)."""
    target, target_values = None, None
    regression = schema.target is not None and schema.target.is_regression
    if dataset.target is not None and regression:
        values = np.asarray(dataset.target, dtype="float64")
        target_values = numeric_profile(schema.target.name if schema.target else "target", values)
    elif dataset.target is not None:
        target = _frequencies(dataset.target)
    pca = None
    if isinstance(dataset.inputs, pd.DataFrame) and schema.medium is None:
        numeric = [c.name for c in schema.columns if c.type in ("float", "int")]
        pca = fit_pca_profile(dataset.inputs[numeric])
    features = (
        profile_features(descriptors, set())
        if descriptors is not None
        else _features(dataset, schema)
    )
    return Profile(
        rows=len(dataset),
        features=features,
        target=target,
        target_values=target_values,
        pca=pca,
    )


def profile_features(frame: pd.DataFrame, categorical: set[str]) -> list[FeatureProfile]:
    """Profiles for named columns (used for reference and, later, live data alike), one
    column per thread: the percentile selection releases the GIL, so cores add up."""

    def one(name: object) -> FeatureProfile:
        column = frame[name]
        if str(name) in categorical:
            return _category_profile(str(name), column)
        numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64")
        return numeric_profile(str(name), numbers)

    return column_map(one, list(frame.columns))


def tensor_summaries(array: np.ndarray, name: str = "x") -> pd.DataFrame:
    """Per-instance mean and std of a tensor batch: the features drift is judged on."""
    flat = array.reshape(len(array), -1).astype("float64")
    return pd.DataFrame({f"{name}.mean": flat.mean(axis=1), f"{name}.std": flat.std(axis=1)})


def exact_percentiles(values: np.ndarray, q: np.ndarray, cells: Cells | None) -> np.ndarray:
    """``np.percentile(values, q)`` (linear interpolation) from the few order statistics
    it needs, found without sorting ``values``."""
    position = (len(values) - 1) * np.asarray(q, dtype="float64") / 100.0
    below = np.floor(position).astype("int64")
    above = np.minimum(below + 1, len(values) - 1)
    ranks, where = np.unique(np.r_[below, above], return_inverse=True)
    found = (cells.order_statistics(ranks) if cells else order_statistics(values, ranks))[where]
    low, high = found[: len(below)], found[len(below) :]
    result: np.ndarray = low + (high - low) * (position - below)
    return result


def numeric_profile(name: str, values: np.ndarray) -> FeatureProfile:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return FeatureProfile(name=name, kind="numeric", count=len(values), null_count=len(values))
    cells = sampled_cells(finite)  # made once: the percentiles and the bin counts use them
    percentiles = exact_percentiles(finite, PERCENTILES, cells)
    edges = np.unique(percentiles[10:100:10])  # the deciles, as bin edges
    counts = counts_in_bins(edges, finite, cells)
    return FeatureProfile(
        name=name,
        kind="numeric",
        count=len(values),
        null_count=int(len(values) - len(finite)),
        mean=float(finite.mean()),
        std=float(finite.std()),
        percentiles=[float(v) for v in percentiles],
        bin_edges=[float(e) for e in edges],
        bin_counts=[int(c) for c in counts],
    )


def _category_profile(name: str, column: pd.Series) -> FeatureProfile:
    return FeatureProfile(
        name=name,
        kind="category",
        count=len(column),
        null_count=int(column.isna().sum()),
        frequencies=_frequencies(column),
    )


def _frequencies(column: pd.Series) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value, count in column.dropna().value_counts().items():
        key = category_key(value)
        counts[key] = counts.get(key, 0) + int(count)
    return dict(sorted(counts.items()))


def _features(dataset: Dataset, schema: Schema) -> list[FeatureProfile]:
    if isinstance(dataset.inputs, np.ndarray):
        return profile_features(tensor_summaries(dataset.inputs), set())
    if schema.medium is not None:  # descriptors (brightness, length, ...) are monitoring's
        return []
    categorical = {c.name for c in schema.columns if c.type in ("category", "bool")}
    return profile_features(dataset.inputs, categorical)
