"""What a drift method is: a name, a default threshold, whether its score is a p-value or
a distance, and how it scores a numeric and/or a categorical feature from the evidence a
window offers. The built-ins are in ``methods/``; a new one is a module there (or in a
user's code) that builds a ``DriftMethod`` and calls ``DRIFT_METHODS.register``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

from dnnops.data.profile import FeatureProfile
from dnnops.monitor.stats.drift.scores import ks_wasserstein
from dnnops.plugins import DRIFT_METHODS

FeatureKind = Literal["numeric", "category"]

AUTO: dict[FeatureKind, str] = {"numeric": "ks_wasserstein", "category": "jensen_shannon"}
"""What ``auto`` means: significance and effect size together, so that neither noise in a
few hundred rows nor a negligible shift in millions is drift, at any window size (a
number: the KS test, then the Wasserstein distance in standard deviations; a category:
the chi-square test, then the Jensen-Shannon distance)."""

FALLBACK: dict[FeatureKind, str] = {"numeric": "psi", "category": "jensen_shannon"}
"""The method a feature gets when the one configured does not apply to its kind (a
chi-square test asked of a number, a KS test of a category)."""


@dataclass(frozen=True)
class NumericEvidence:
    """A numeric feature's window, as a method may read it. ``fine`` (counts over the
    reference's 101 percentile points) is always there, since digests keep it; ``values``
    only when the caller holds the raw values (offline drift of a file)."""

    profile: FeatureProfile
    fine: np.ndarray
    reference_bins: np.ndarray
    """The reference's counts on its decile bins."""
    current_bins: np.ndarray
    """The window's counts on the same bins."""
    values: np.ndarray | None = None

    @property
    def reference_count(self) -> int:
        return self.profile.count - self.profile.null_count

    @cached_property
    def cdf_gap(self) -> tuple[float, float]:
        """(Wasserstein-1 in reference stds, KS p-value) read off the two CDFs on the
        reference's percentile points: shared by the three CDF methods, computed once."""
        return ks_wasserstein(
            self.profile.percentiles or [0.0, 0.0],
            self.profile.std or 0.0,
            self.reference_count,
            counts=self.fine,
        )


@dataclass(frozen=True)
class CategoryEvidence:
    """A categorical feature's window: both counts over the union of categories."""

    names: list[str]
    reference: np.ndarray
    current: np.ndarray
    require_significance: bool = False
    """Set under ``auto``: a distance over its threshold must also be unlikely by chance."""


@dataclass(frozen=True)
class Score:
    value: float
    significant: bool = True
    """False when the shift, however large, is within what chance gives: not drift."""


@dataclass(frozen=True)
class DriftMethod:
    name: str
    summary: str
    """One line for the docs and for the error that lists the methods."""
    default_threshold: float
    p_value: bool
    """True: the score is a test's p-value and a feature drifts below the threshold;
    False: a distance, and it drifts at or above it."""
    numeric: Callable[[NumericEvidence], Score] | None = None
    category: Callable[[CategoryEvidence], Score] | None = None

    def applies_to(self, kind: FeatureKind) -> bool:
        return (self.numeric if kind == "numeric" else self.category) is not None

    def drifted(self, score: float, threshold: float) -> bool:
        return score < threshold if self.p_value else score >= threshold


def resolve(kind: FeatureKind, name: str) -> DriftMethod:
    """The method that judges a feature of ``kind`` when ``name`` is configured."""
    method = DRIFT_METHODS.get(AUTO[kind] if name == "auto" else name)
    return method if method.applies_to(kind) else DRIFT_METHODS.get(FALLBACK[kind])
