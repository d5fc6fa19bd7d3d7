"""The built-in SLO kinds, one module each; importing this package registers them
(``SLO_KINDS`` does it on its first lookup)."""

from dnnops.monitor.judgements.slo_kinds import (  # noqa: F401  (registration on import)
    accuracy,
    kpi,
    label_coverage,
    label_lag,
    latency,
    success_rate,
)
