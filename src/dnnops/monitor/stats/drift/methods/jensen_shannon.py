"""Jensen-Shannon distance (base 2, in [0, 1]) between the category shares; under
``auto`` a distance over the threshold is drift only when the chi-square test also finds
the counts unlikely under the reference."""

from dnnops.monitor.stats.drift.method import CategoryEvidence, DriftMethod, Score
from dnnops.monitor.stats.drift.scores import (
    KS_ALPHA,
    chi_square_p_value,
    jensen_shannon_distance,
)
from dnnops.plugins import DRIFT_METHODS


def _category(evidence: CategoryEvidence) -> Score:
    distance = jensen_shannon_distance(evidence.reference, evidence.current)
    if not evidence.require_significance:
        return Score(distance)
    p_value = chi_square_p_value(evidence.reference, evidence.current)
    return Score(distance, significant=p_value < KS_ALPHA)


DRIFT_METHODS.register(
    DriftMethod(
        name="jensen_shannon",
        summary="Jensen-Shannon distance between category shares (auto for categories)",
        default_threshold=0.1,
        p_value=False,
        category=_category,
    )
)
