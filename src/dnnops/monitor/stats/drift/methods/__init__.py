"""The built-in drift methods, one module each; importing this package registers them
(``DRIFT_METHODS`` does it on its first lookup)."""

from dnnops.monitor.stats.drift.methods import (  # noqa: F401  (registration on import)
    chi2,
    jensen_shannon,
    ks,
    ks_wasserstein,
    psi,
    wasserstein,
)
