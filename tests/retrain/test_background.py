"""A server started with ``-c dnnops.yaml`` evaluates its own monitoring: it raises the drift
alert without anyone running ``monitor report``, and with ``retrain.background`` it runs
the retraining pipeline when the triggers fire, which registers v2 and starts its canary;
the run is recorded (``dnnops retrain status``, ``dnnops_retrain_runs_total``)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from sklearn.datasets import load_digits

from dnnops.quickstart.camera import new_camera
from tests.conftest import subprocess_env
from tests.serve.conftest import start_server


# Slow (30-60 s here): a real server notices drift, alerts, and runs `dnnops retrain` in a
# child process (a whole training) before it starts the challenger's canary.
def test_the_server_alerts_and_retrains_on_its_own(tmp_path: Path) -> None:
    frame = load_digits(as_frame=True).frame.sample(frac=1.0, random_state=2)
    source = tmp_path / "old-camera.parquet"
    frame.iloc[:1000].to_parquet(source, index=False)
    config = tmp_path / "dnnops.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "digits",
                "data": {"source": str(source), "preprocessing": {"numeric": "scale"}},
                "model": {"arch": "mlp", "params": {"hidden": [64], "dropout": 0.0}},
                "train": {"epochs": 15, "lr": 0.005, "seed": 0},
                "monitor": {"evaluate_every": "1s", "window": "10m"},
                "retrain": {
                    "background": True,
                    "check_every": "1s",
                    "drift_share": 0.5,
                    "min_new_labels": 300,
                },
                "rollout": {"interval": "1h"},
            }
        )
    )
    home = tmp_path / "home"
    subprocess.run(
        [sys.executable, "-m", "dnnops", "train", "-c", str(config), "--quiet", "--json"],
        env=subprocess_env(home),
        check=True,
        capture_output=True,
        timeout=300,
    )
    server = start_server(home, "-c", str(config))
    try:
        live = frame.iloc[1000:]
        x = new_camera(live.drop(columns=["target"]).to_numpy(dtype="float64"), seed=3)
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for start in range(0, len(x), 8):
                rows = x[start : start + 8]
                body = {
                    "inputs": [
                        {
                            "name": "input",
                            "shape": list(rows.shape),
                            "datatype": "FP32",
                            "data": rows.ravel().tolist(),
                        }
                    ]
                }
                answer = http.post("/v2/models/digits/infer", json=body)
                ids = answer.headers["x-prediction-id"].split(",")
                truth = live["target"].to_numpy()[start : start + 8]
                labels = [
                    {"prediction_id": i, "label": int(y)} for i, y in zip(ids, truth, strict=True)
                ]
                http.post("/v1/feedback", json={"labels": labels})
        deadline = time.monotonic() + 120
        while True:
            with sqlite3.connect(home / "dnnops.db") as db:
                versions = [v for (v,) in db.execute("select version from model_versions")]
                kinds = {
                    k for (k,) in db.execute("select kind from alerts where status = 'firing'")
                }
                rollouts = db.execute("select candidate, status from rollouts").fetchall()
            if 2 in versions and rollouts and "drift" in kinds:
                break
            assert time.monotonic() < deadline, (versions, kinds, rollouts)
            time.sleep(0.5)
        assert rollouts == [(2, "running")]
        endpoint = httpx.get(f"{server.url}/v1/endpoints/digits").json()
        deadline = time.monotonic() + 10
        while endpoint["canary_version"] != "2":
            assert time.monotonic() < deadline, endpoint
            time.sleep(0.2)
            endpoint = httpx.get(f"{server.url}/v1/endpoints/digits").json()
        deadline = time.monotonic() + 30  # the run is recorded on the tick after it ends
        while not (runs := _retrain_runs(home)):
            assert time.monotonic() < deadline, "the finished retraining was never recorded"
            time.sleep(0.5)
        first = runs[-1]
        assert first["outcome"] == "retrained" and first["exit_code"] == 0
        assert first["duration_s"] > 0 and "v2" in first["summary"]
        assert Path(first["log"]).is_file() and Path(first["answer"]).is_file()
        metrics = httpx.get(f"{server.url}/metrics").text
        assert 'dnnops_retrain_runs_total{outcome="retrained"} 1.0' in metrics
    finally:
        server.stop()


def _retrain_runs(home: Path) -> list[dict[str, Any]]:
    shown = subprocess.run(
        [sys.executable, "-m", "dnnops", "retrain", "status", "--json"],
        env=subprocess_env(home),
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    runs: list[dict[str, Any]] = json.loads(shown.stdout)
    return runs
