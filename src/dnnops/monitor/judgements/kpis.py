"""A version's business KPIs from the outcomes joined with its predictions: the mean (a
rate when every outcome is 0 or 1) and its 95% interval, for the report, the executive
view and the rollout's KPI gates, which compare two versions' outcomes the same way."""

from __future__ import annotations

import math

import numpy as np

from dnnops.config import KpiConfig
from dnnops.monitor.judgements.report_types import Kpi

Z95 = 1.96


def kpi_values(values: np.ndarray, config: KpiConfig, predictions: int) -> np.ndarray:
    """The values a KPI is the mean of: the outcomes sent, and with ``missing: zero`` a 0
    for each answered prediction none arrived for."""
    finite: np.ndarray = values[np.isfinite(values)]
    if config.missing == "zero" and predictions > len(finite):
        return np.concatenate([finite, np.zeros(predictions - len(finite))])
    return finite


def kpi_of(config: KpiConfig, values: np.ndarray, predictions: int) -> Kpi:
    """``values``: the outcomes that arrived for the window's predictions (NaN: none)."""
    arrived = int(np.isfinite(values).sum())
    judged = kpi_values(values, config, predictions)
    rate = bool(len(judged)) and bool(np.isin(judged, (0.0, 1.0)).all())
    kind = "rate" if rate else "mean"
    if not len(judged):
        return Kpi(config.name, config.better, kind, None, None, None, arrived, 0)
    mean = float(judged.mean())
    low, high = wilson(mean, len(judged)) if rate else normal_interval(judged)
    return Kpi(config.name, config.better, kind, mean, low, high, arrived, len(judged))


def wilson(share: float, count: int) -> tuple[float, float]:
    """Wilson's 95% interval of a proportion: honest near 0 and 1, where a click rate is."""
    z2 = Z95 * Z95
    centre = (share + z2 / (2 * count)) / (1 + z2 / count)
    spread = Z95 * math.sqrt(share * (1 - share) / count + z2 / (4 * count * count))
    spread /= 1 + z2 / count
    return max(0.0, centre - spread), min(1.0, centre + spread)


def normal_interval(values: np.ndarray) -> tuple[float, float]:
    mean = float(values.mean())
    if len(values) < 2:
        return mean, mean
    spread = Z95 * float(values.std(ddof=1)) / math.sqrt(len(values))
    return mean - spread, mean + spread
