"""Significance and size together: the KS test must reject at ``KS_ALPHA`` and the
Wasserstein distance must reach the threshold. Significance alone flags negligible shifts
in windows of millions of rows, size alone flags noise in windows of hundreds."""

from dnnops.monitor.stats.drift.method import DriftMethod, NumericEvidence, Score
from dnnops.monitor.stats.drift.scores import KS_ALPHA
from dnnops.plugins import DRIFT_METHODS


def _numeric(evidence: NumericEvidence) -> Score:
    distance, p_value = evidence.cdf_gap
    return Score(distance, significant=p_value < KS_ALPHA)


DRIFT_METHODS.register(
    DriftMethod(
        name="ks_wasserstein",
        summary="Wasserstein-1 in reference stds, once the KS test rejects (auto for numbers)",
        default_threshold=0.05,
        p_value=False,
        numeric=_numeric,
    )
)
