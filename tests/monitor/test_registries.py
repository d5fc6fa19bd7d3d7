"""Drift methods and SLO kinds are registries: a new one is one module and one
registration, and config validation, the report and the Prometheus rules all read it.
The two modules in ``tests/monitor/plugins/`` are the ones ``docs/extending.md`` shows."""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

from dnnops.config import DriftConfig, MonitorConfig, ProjectConfig, SloConfig
from dnnops.data.profile import numeric_profile, profile_features
from dnnops.home import resolve_home
from dnnops.inference.logger import PredictionLogger
from dnnops.monitor.judgements.prometheus_rules import prometheus_rules
from dnnops.monitor.report import build_report
from dnnops.monitor.stats.dataset_drift import dataset_drift, reference_from_frame
from dnnops.monitor.stats.drift import drift_from_counts, percentile_counts
from dnnops.plugins import DRIFT_METHODS, SLO_KINDS, UnknownName
from dnnops.registry.open import open_registry


@pytest.fixture
def plugins() -> Iterator[None]:
    """The two example modules, registered for one test and removed after it."""
    for name in ("hellinger", "input_acceptance"):
        module = f"tests.monitor.plugins.{name}"
        if module in sys.modules:  # registered by an earlier test, then unregistered
            importlib.reload(sys.modules[module])
        else:
            importlib.import_module(module)
    yield
    DRIFT_METHODS.unregister("hellinger")
    SLO_KINDS.unregister("input_acceptance")


def test_the_built_ins_are_registered_and_an_unknown_name_lists_them() -> None:
    assert {"psi", "ks", "wasserstein", "ks_wasserstein", "chi2", "jensen_shannon"} <= set(
        DRIFT_METHODS.names()
    )
    assert {"latency", "success_rate", "accuracy", "label_coverage", "label_lag"} <= set(
        SLO_KINDS.names()
    )
    with pytest.raises(ValueError, match="unknown drift method 'helinger'; choose one of"):
        DriftConfig(method="helinger")
    with pytest.raises(ValueError, match=r"unknown SLO kind 'latncy'.*'label_lag'"):
        SloConfig.model_validate({"objectives": [{"name": "x", "kind": "latncy", "target": 0.9}]})
    with pytest.raises(UnknownName):
        SLO_KINDS.get("input_acceptance")
    with pytest.raises(ValueError, match="already registered"):
        DRIFT_METHODS.register(DRIFT_METHODS.get("psi"))


def test_a_registered_drift_method_judges_numbers_and_categories(plugins: None) -> None:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {"x": rng.normal(0, 1, 4000), "colour": rng.choice(["red", "blue", "grey"], 4000)}
    )
    same = pd.DataFrame(
        {"x": rng.normal(0, 1, 1000), "colour": rng.choice(["red", "blue", "grey"], 1000)}
    )
    moved = pd.DataFrame(
        {"x": rng.normal(1.5, 1, 1000), "colour": rng.choice(["red", "grey"], 1000, p=[0.9, 0.1])}
    )
    config = DriftConfig(method="hellinger")
    profile = reference_from_frame(reference)
    calm = dataset_drift(profile, same, config)
    assert {f.method for f in calm.features} == {"hellinger"}
    assert not any(f.drifted for f in calm.features)
    shifted = dataset_drift(profile, moved, config)
    assert all(f.drifted and f.method == "hellinger" for f in shifted.features)
    # the digests' path: counts over the reference's percentile points give the same verdict
    x = numeric_profile("x", reference["x"].to_numpy())
    fine = percentile_counts(x.percentiles or [], moved["x"].to_numpy())
    from_counts = drift_from_counts(x, fine.tolist(), "hellinger")
    assert from_counts.drifted and from_counts.score == pytest.approx(
        next(f.score for f in shifted.features if f.feature == "x"), rel=1e-6
    )
    [colour] = profile_features(reference[["colour"]], {"colour"})
    assert drift_from_counts(colour, {"red": 900, "grey": 100}, "hellinger").drifted


def test_a_registered_slo_kind_is_budgeted_by_the_report_and_ruled_by_prometheus(
    tmp_path: Path, plugins: None
) -> None:
    now = time.time()
    context = {"endpoint": "toy", "model": "toy", "version": "1"}
    answered = [
        {**context, "id": f"a{i}", "ts": now - 600 - i, "status": 200, "output": 1}
        for i in range(190)
    ]
    refused = [{**context, "id": None, "ts": now - 300 - i, "status": 422} for i in range(10)]
    failed = [{**context, "id": None, "ts": now - 200 - i, "status": 500} for i in range(5)]
    logger = PredictionLogger(tmp_path / "home" / "logs").start()
    try:
        logger.predictions.append([orjson.dumps(r) for r in answered + refused + failed])
    finally:
        logger.close()
    home = resolve_home(tmp_path / "home")
    slo = SloConfig.model_validate(
        {
            "objectives": [
                {"name": "inputs", "kind": "input_acceptance", "target": 0.99},
                {"name": "up", "kind": "success_rate", "target": 0.99},
            ],
            "min_events": 10,
        }
    )
    report = build_report(
        open_registry(home), home.logs_dir, 3600, monitor=MonitorConfig(), slo=slo
    )
    inputs, up = report.versions[0].slo
    assert (inputs.kind, inputs.events, inputs.met) == ("input_acceptance", 205, False)
    assert inputs.current == pytest.approx(195 / 205)
    assert up.events == 195, "a refused input burns the acceptance budget, not availability's"
    burn = {a.objective: a for a in report.versions[0].alerts}
    assert burn["inputs"].runbook_url == "docs/runbooks/input-policy.md"

    project = ProjectConfig.model_validate(
        {"name": "toy", "data": {"source": "x.csv"}, "slo": slo.model_dump()}
    )
    rules = prometheus_rules(project)
    recorded = [r for g in rules["groups"] for r in g["rules"] if "record" in r]
    mine = [r for r in recorded if r["labels"].get("objective") == "inputs"]
    assert mine and 'status=~"4.."' in mine[0]["expr"]
