"""Alerts with evidence: drift verdicts that fit the window's size, a multivariate test
with a significance level, minimum samples, and one alert per condition."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dnnops.config import DriftConfig, MonitorConfig, SloConfig
from dnnops.monitor.judgements.slo import burn_alerts, burn_rules
from dnnops.monitor.stats.dataset_drift import dataset_drift, reference_from_frame

WORKBOOK = burn_rules(SloConfig())

RNG = np.random.default_rng(11)
REFERENCE = pd.DataFrame({"x": RNG.normal(0, 1, 20_000), "k": RNG.choice(list("abc"), 20_000)})
PROFILE = reference_from_frame(REFERENCE)


def _current(rows: int, *, shift: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(shift, 1, rows), "k": rng.choice(list("abc"), rows)})


def _drifted(frame: pd.DataFrame, method: str = "auto") -> bool:
    [numeric] = [f for f in dataset_drift(PROFILE, frame, DriftConfig(method=method)).features
                 if f.feature == "x"]  # fmt: skip
    return numeric.drifted


def test_auto_drift_catches_a_small_shift_in_a_million_rows_that_psi_misses() -> None:
    million = _current(1_000_000, shift=0.15, seed=1)
    assert not _drifted(million, "psi"), "PSI at 0.2 misses a 0.15-sd shift"
    assert _drifted(million), "significant, and 0.15 sd is beyond the 0.05-sd effect floor"


def test_auto_drift_ignores_a_negligible_shift_in_millions_and_noise_in_hundreds() -> None:
    assert not _drifted(_current(1_000_000, shift=0.02, seed=2)), "significant but negligible"
    noisy = [_drifted(_current(300, shift=0.0, seed=seed)) for seed in range(20)]
    assert sum(noisy) == 0, "no drift from noise in windows of 300 rows"
    assert _drifted(_current(300, shift=1.0, seed=3)), "a real shift in 300 rows is seen"


def test_too_few_rows_give_scores_but_no_verdict() -> None:
    few = dataset_drift(PROFILE, _current(40, shift=3.0, seed=4), DriftConfig(min_rows=100))
    assert few.too_few_rows and not few.drifted
    assert not any(f.drifted for f in few.features) and few.features[0].score > 0


def test_the_multivariate_test_uses_a_significance_level() -> None:
    """Twenty features, two of them correlated (0.5); the correlation breaks, every marginal
    stays: a z-test on the mean reconstruction error flags it, and not its absence."""
    rng = np.random.default_rng(7)
    rows = 200_000

    def frame(correlated: bool) -> pd.DataFrame:
        data = rng.normal(0, 1, (rows, 20))
        if correlated:
            data[:, 1] = 0.5 * data[:, 0] + np.sqrt(1 - 0.25) * data[:, 1]
        return pd.DataFrame(data, columns=[f"f{i}" for i in range(20)])

    profile = reference_from_frame(frame(correlated=True))
    assert profile.pca is not None and profile.pca.reference_error_std is not None
    config = DriftConfig()
    same = dataset_drift(profile, frame(correlated=True), config).multivariate
    broken = dataset_drift(profile, frame(correlated=False), config).multivariate
    assert same is not None and broken is not None
    assert (
        not same.drifted and same.p_value is not None and same.p_value > config.multivariate_alpha
    )
    assert broken.drifted and broken.p_value is not None and broken.p_value < 1e-6
    assert broken.score < 1.2, "a fixed 1.2 ratio would have missed it"


def test_burn_rate_alerts_need_a_minimum_of_events() -> None:
    def few(seconds: float) -> tuple[int, int]:
        return 2, 3  # two failures in the first three requests

    assert burn_alerts("ok", 0.999, few, rules=WORKBOOK, min_events=100) == []
    assert burn_alerts("ok", 0.999, few, rules=WORKBOOK, min_events=0), (
        "without the minimum it would page"
    )

    def many(seconds: float) -> tuple[int, int]:
        return 200, 1000

    assert burn_alerts("ok", 0.999, many, rules=WORKBOOK, min_events=100)


def test_the_report_raises_one_alert_per_condition(tmp_path: Path) -> None:
    from dnnops.home import resolve_home
    from dnnops.inference.logger import PredictionLogger
    from dnnops.monitor.report import build_report
    from dnnops.predlog.records import PredictionRecord
    from dnnops.registry.open import open_registry

    now = time.time()
    records = [
        PredictionRecord(ts=now - 60 - i, status=500 if i % 2 else 200, endpoint="toy",
                         model="toy", version="1", id=f"p{i}", output=1).encode()
        for i in range(400)
    ]  # fmt: skip
    logger = PredictionLogger(tmp_path / "home" / "logs").start()
    logger.predictions.append(records)
    logger.close()
    home = resolve_home(tmp_path / "home")
    slo = SloConfig.model_validate(
        {"objectives": [{"name": "ok", "kind": "success_rate", "target": 0.999}]}
    )
    report = build_report(
        open_registry(home), home.logs_dir, 3600.0, monitor=MonitorConfig(), slo=slo, now=now
    )
    [alert] = report.versions[0].alerts  # 50% errors fire all three rules: one alert
    assert (alert.severity, alert.factor) == ("page", 14.4)


@pytest.mark.parametrize("method", ["psi", "ks_wasserstein", "jensen_shannon"])
def test_explicit_methods_still_decide_alone(method: str) -> None:
    assert DriftConfig(method=method).method == method  # auto is only the default


def test_a_discrete_feature_with_tied_percentiles_is_judged_on_its_values() -> None:
    """A pixel that is 0 in 90% of images has 90 of its 101 percentile points at 0; the
    CDFs are compared at each value, not at each (tied) point."""
    from dnnops.data.profile import numeric_profile
    from dnnops.monitor.stats.drift import feature_drift

    rng = np.random.default_rng(3)

    def pixels(rows: int, lit: float) -> np.ndarray:
        return np.where(rng.random(rows) < lit, rng.integers(1, 17, rows), 0).astype(float)

    profile = numeric_profile("pixel", pixels(20_000, 0.1))
    assert not feature_drift(profile, pixels(50_000, 0.1)).drifted
    assert not feature_drift(profile, pixels(300, 0.1)).drifted
    assert feature_drift(profile, pixels(5_000, 0.4)).drifted
