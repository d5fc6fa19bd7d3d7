"""Wasserstein-1 distance between the quantile functions, in reference standard
deviations (as Evidently normalises it)."""

from dnnops.monitor.stats.drift.method import DriftMethod, NumericEvidence, Score
from dnnops.monitor.stats.drift.scores import wasserstein_normalized
from dnnops.plugins import DRIFT_METHODS


def _numeric(evidence: NumericEvidence) -> Score:
    if evidence.values is None:
        return Score(evidence.cdf_gap[0])
    percentiles = evidence.profile.percentiles or [0.0, 0.0]
    return Score(wasserstein_normalized(percentiles, evidence.profile.std or 0.0, evidence.values))


DRIFT_METHODS.register(
    DriftMethod(
        name="wasserstein",
        summary="Wasserstein-1 distance in reference standard deviations",
        default_threshold=0.1,
        p_value=False,
        numeric=_numeric,
    )
)
