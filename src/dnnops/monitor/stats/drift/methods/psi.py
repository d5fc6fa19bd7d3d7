"""Population stability index over the reference's decile bins."""

from dnnops.monitor.stats.drift.method import DriftMethod, NumericEvidence, Score
from dnnops.monitor.stats.drift.scores import psi
from dnnops.plugins import DRIFT_METHODS


def _numeric(evidence: NumericEvidence) -> Score:
    return Score(psi(evidence.reference_bins, evidence.current_bins))


DRIFT_METHODS.register(
    DriftMethod(
        name="psi",
        summary="population stability index over the reference's decile bins",
        default_threshold=0.2,  # "significant shift" in credit-risk practice (Siddiqi 2006)
        p_value=False,
        numeric=_numeric,
    )
)
