"""A tuned threshold is part of the version: the evaluation, the server, batch prediction
and the Python API all answer the rare class by it, on a user's 3% positives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dnnops
from dnnops.home import resolve_home
from dnnops.registry.open import open_registry
from tests.serve.conftest import start_server
from tests.userdata import project_file, write_csv


def _rare_positives(rows: int = 2400, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    plan = rng.choice(["basic", "pro"], rows)
    logit = -5.6 + 2.0 * x1 - 1.0 * x2 + 0.7 * (plan == "pro")
    churn = np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "churned", "stayed")
    return pd.DataFrame({"x1": x1, "x2": x2, "plan": plan, "status": churn})


def test_a_tuned_threshold_answers_alike_everywhere(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = _rare_positives()
    assert (frame["status"] == "churned").mean() < 0.05
    source = write_csv(frame, tmp_path / "churn.csv")
    config = project_file(
        tmp_path / "churn.yaml",
        "churn",
        source,
        "status",
        train={"epochs": 15, "batch_size": 64, "lr": 0.01, "seed": 1, "threshold": "balanced"},
        evaluate={"baseline": "trivial"},
    )
    published = dnnops.Project(config).train()
    registry = open_registry(resolve_home(None))
    stored = registry.manifest(registry.resolve("churn", 1))["decision"]
    report = published.report
    assert report is not None and report.decision is not None
    decision = report.decision
    assert decision.rule == "balanced" and 0.0 < decision.threshold < 0.5
    assert report.classes[decision.positive] == "churned"  # the rarer class
    assert stored == decision.model_dump()  # stored with the version
    assert report.metrics["min_recall"] > 0.5  # the rare class is answered
    model = dnnops.load("churn@1")
    rows = _rare_positives(rows=300, seed=11).drop(columns=["status"])
    probabilities = model.predict_proba(rows)
    expected = np.where(
        probabilities[:, decision.positive] >= decision.threshold, "churned", "stayed"
    )
    assert list(model.predict(rows)) == list(expected)
    assert (expected == "churned").sum() > (probabilities.argmax(axis=1) == 0).sum()
    out = tmp_path / "answers.csv"
    monkeypatch.chdir(tmp_path)
    from dnnops.cli import main

    new = write_csv(rows, tmp_path / "new.csv")
    argv = ["dnnops", "predict", str(new), "--model", "churn@1", "--out", str(out)]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code in (None, 0)
    assert list(pd.read_csv(out)["prediction"]) == list(expected)
    server = start_server(home, "--model", "churn@1")
    try:
        with server.client() as http:
            answer = http.post(
                "/v1/models/churn:predict", json={"instances": rows.to_dict(orient="records")}
            )
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == list(expected)
    finally:
        server.stop()
