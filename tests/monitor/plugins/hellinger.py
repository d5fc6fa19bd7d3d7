"""A drift method in one module: the Hellinger distance between the reference's shares
and the window's, over a number's decile bins or a column's categories."""

import numpy as np

from dnnops.monitor.stats.drift.method import (
    CategoryEvidence,
    DriftMethod,
    NumericEvidence,
    Score,
)
from dnnops.plugins import DRIFT_METHODS


def hellinger(reference: np.ndarray, current: np.ndarray) -> float:
    p = reference / max(reference.sum(), 1.0)
    q = current / max(current.sum(), 1.0)
    return float(np.sqrt(0.5 * np.sum((np.sqrt(p) - np.sqrt(q)) ** 2)))


def _numeric(evidence: NumericEvidence) -> Score:
    return Score(hellinger(evidence.reference_bins, evidence.current_bins))


def _category(evidence: CategoryEvidence) -> Score:
    return Score(hellinger(evidence.reference, evidence.current))


METHOD = DRIFT_METHODS.register(
    DriftMethod(
        name="hellinger",
        summary="Hellinger distance between bin or category shares",
        default_threshold=0.1,
        p_value=False,
        numeric=_numeric,
        category=_category,
    )
)
