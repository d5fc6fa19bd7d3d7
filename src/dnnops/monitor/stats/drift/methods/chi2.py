"""Chi-square goodness of fit of the window's category counts to the reference's shares."""

from dnnops.monitor.stats.drift.method import CategoryEvidence, DriftMethod, Score
from dnnops.monitor.stats.drift.scores import chi_square_p_value
from dnnops.plugins import DRIFT_METHODS


def _category(evidence: CategoryEvidence) -> Score:
    return Score(chi_square_p_value(evidence.reference, evidence.current))


DRIFT_METHODS.register(
    DriftMethod(
        name="chi2",
        summary="chi-square test's p-value over the categories (drift below the threshold)",
        default_threshold=0.05,
        p_value=True,
        category=_category,
    )
)
