"""Per-feature drift: the statistics (``scores``), what a method is (``method``), the
built-in methods (``methods/``, registered in ``dnnops.plugins.DRIFT_METHODS``) and the
verdict for one feature (``judge``)."""

from dnnops.monitor.stats.drift.judge import (
    FeatureDrift,
    default_method,
    drift_from_counts,
    feature_drift,
)
from dnnops.monitor.stats.drift.scores import (
    bin_counts,
    category_counts,
    category_union,
    jensen_shannon_distance,
    ks_p_value,
    percentile_counts,
    psi,
)

__all__ = [
    "FeatureDrift",
    "bin_counts",
    "category_counts",
    "category_union",
    "default_method",
    "drift_from_counts",
    "feature_drift",
    "jensen_shannon_distance",
    "ks_p_value",
    "percentile_counts",
    "psi",
]
