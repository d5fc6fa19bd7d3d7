"""A numeric target end to end: init infers regression, training reports MAE/RMSE/R²/MAPE
and gates them, the server answers numbers (v1 and v2), batch prediction and the Python
API too, and monitoring reads the records without class counts."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

import dnnops
from tests.conftest import CliResult, subprocess_env
from tests.monitor.test_report_schema import check_report
from tests.serve.conftest import start_server
from tests.userdata import prices_frame, write_csv


def test_a_price_is_learned_served_and_predicted_as_a_number(
    tmp_path: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    frame = prices_frame(rows=800)
    source = write_csv(frame, tmp_path / "prices.csv")
    assert cli("init", "--data", str(source), "--target", "price").code == 0
    project = yaml.safe_load((tmp_path / "dnnops.yaml").read_text())
    assert project["task"] == "regression"
    project["train"] = {"epochs": 80, "lr": 0.01, "seed": 0}
    (tmp_path / "dnnops.yaml").write_text(yaml.safe_dump(project))

    trained = cli("train", "-c", "dnnops.yaml", "--json")
    assert trained.code == 0, trained.err
    payload = trained.json()
    evaluation = payload["evaluation"]
    assert {"mae", "rmse", "r2", "mape", "robust_mae"} <= set(evaluation)
    assert evaluation["r2"] > 0.9 and payload["gates_passed"] is True  # the init's r2 gate
    assert "test_mae" in payload["metrics"]

    model = dnnops.load("prices@production")
    features = frame.drop(columns=["price"])
    predicted = model.predict(features)
    assert predicted.dtype.kind == "f"
    assert np.abs(predicted - frame["price"].to_numpy()).mean() < 0.3 * frame["price"].std()

    out = tmp_path / "out.csv"
    batch = cli("predict", str(source), "--model", "prices@1", "--out", str(out), "--json")
    assert batch.code == 0, batch.err
    written = pd.read_csv(out)
    assert list(written.columns) == ["prediction_id", "prediction"]
    np.testing.assert_allclose(written["prediction"], predicted, rtol=1e-4, atol=1e-3)

    server = start_server(home, "--model", "prices@production")
    try:
        rows = features.head(3).astype(object).where(features.head(3).notna(), None)
        with server.client() as http:
            v1 = http.post("/v1/models/prices:predict", json={"instances": rows.to_dict("records")})
            assert v1.status_code == 200, v1.text
            answer = v1.json()
            assert "probabilities" not in answer
            np.testing.assert_allclose(answer["predictions"], predicted[:3], rtol=1e-4)
            metadata = http.get("/v2/models/prices").json()
            assert metadata["outputs"] == [
                {"name": "prediction", "datatype": "FP32", "shape": [-1]}
            ]
            labels = [
                {"prediction_id": pid, "label": float(y)}
                for pid, y in zip(answer["prediction_ids"], frame["price"].head(3), strict=True)
            ]
            word = [{"prediction_id": answer["prediction_ids"][0], "label": "expensive"}]
            labels_answer = http.post("/v1/feedback", json={"labels": labels + word}).json()
            statuses = [item["status"] for item in labels_answer["items"]]
            assert statuses == ["accepted"] * 3 + ["unknown_label"], "a regressor takes numbers"
            report = http.get("/v1/monitor/prices?since=1h").json()
            check_report(report)
            version = report["versions"][0]
            assert version["slis"]["predictions"] == 3 and version["slis"]["success_rate"] == 1.0
            quality = version["quality"]
            assert quality["task"] == "regression" and quality["labels"] == 3
            errors = np.asarray(answer["predictions"]) - frame["price"].head(3).to_numpy()
            assert quality["metrics"]["mae"] == pytest.approx(np.abs(errors).mean(), rel=1e-4)
            assert quality["metrics"]["bias"] == pytest.approx(errors.mean(), rel=1e-4, abs=1e-3)
            assert sum(quality["residuals"]["counts"]) == 3
            assert "accuracy" not in quality["metrics"] and quality["confusion_matrix"] == []

            _predict_rows(http, features.iloc[3:203])
            calm = http.get("/v1/monitor/prices?since=1h").json()["versions"][0]
            assert calm["prediction_drift"]["reference_of"] == "test_predictions"
            assert calm["prediction_drift"]["drifted"] is False, calm["prediction_drift"]
            bigger = features.iloc[203:603].assign(area=lambda f: f["area"] * 3)
            _predict_rows(http, bigger)
            shifted = http.get("/v1/monitor/prices?since=1h").json()["versions"][0]
            assert shifted["prediction_drift"]["drifted"] is True, shifted["prediction_drift"]
            assert shifted["quality"]["labels"] == 3, "unlabeled predictions are not scored"

            board = http.get("/v1/dashboard/prices?since=1h").json()
            assert board["task"] == "regression"
            assert [v for v in board["series"]["versions"]["1"]["mae"] if v is not None]
            assert board["series"]["versions"]["1"]["accuracy"] == [None] * len(
                board["series"]["t"]
            ), "a regressor has no accuracy"
    finally:
        server.stop()
    logged = subprocess.run(
        [sys.executable, "-m", "dnnops", "logs", "show", "--jsonl", "--limit", "100000"],
        env=subprocess_env(home),
        capture_output=True,
        text=True,
        check=True,
    )
    records = [json.loads(line) for line in logged.stdout.splitlines()]
    served = [r for r in records if r.get("protocol") == "v1"]
    assert len(served) == 603 and all(isinstance(r["output"], float) for r in served)
    assert all("probabilities" not in r for r in served)


def _predict_rows(http: httpx.Client, rows: pd.DataFrame) -> None:
    """Send ``rows`` by feature name, 50 per request (missing values as null)."""
    for start in range(0, len(rows), 50):
        part = rows.iloc[start : start + 50]
        instances = part.astype(object).where(part.notna(), None).to_dict("records")
        answered = http.post("/v1/models/prices:predict", json={"instances": instances})
        assert answered.status_code == 200, answered.text
