"""Two-sample Kolmogorov-Smirnov test, the reference given by its percentiles."""

from dnnops.monitor.stats.drift.method import DriftMethod, NumericEvidence, Score
from dnnops.monitor.stats.drift.scores import ks_p_value
from dnnops.plugins import DRIFT_METHODS


def _numeric(evidence: NumericEvidence) -> Score:
    if evidence.values is None:  # a digest: the CDFs on the 101 percentile points
        return Score(evidence.cdf_gap[1])
    percentiles = evidence.profile.percentiles or [0.0, 0.0]
    return Score(ks_p_value(percentiles, evidence.reference_count, evidence.values)[1])


DRIFT_METHODS.register(
    DriftMethod(
        name="ks",
        summary="Kolmogorov-Smirnov test's p-value (drift below the threshold)",
        default_threshold=0.05,
        p_value=True,
        numeric=_numeric,
    )
)
