"""A canary judged on a business KPI: the candidate answers as accurately as the stable
version, but its customers buy less (outcomes sent to /v1/outcomes by prediction id), and
the KPI gate alone rolls it back. The report shows each version's KPI with its interval."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import httpx
import numpy as np
import yaml
from sklearn.datasets import load_digits

from dnnops import Client
from tests.rollout.conftest import ADMIN, Versions, _infer_body, dnnops, wait_for_rollout
from tests.serve.conftest import start_server

BUYS = {"1": 0.6, "2": 0.2}
"""How often a customer buys after each version's answer."""


def kpi_project(versions: Versions, folder: Path) -> Path:
    config = yaml.safe_load(versions.config.read_text())
    config["monitor"] = {"kpis": [{"name": "purchase", "better": "higher"}]}
    config["rollout"] = {**config["rollout"], "kpi_gates": [{"kpi": "purchase"}]}
    path = folder / "kpi.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def shop(url: str, stop: threading.Event, seed: int, answered: list[str]) -> None:
    """Requests of four digits, their true labels, and a purchase (or not) after each."""
    digits = load_digits()
    rng = np.random.default_rng(seed)
    with httpx.Client(base_url=url, timeout=30, headers=ADMIN) as http:
        while not stop.is_set():
            rows = rng.choice(len(digits.target), 4, replace=False)
            response = http.post(
                "/v2/models/digits/infer",
                json=_infer_body(digits.data[rows]),
                headers={"x-routing-key": uuid.uuid4().hex},
            )
            assert response.status_code == 200, response.text
            version = response.headers["x-model-version"]
            ids = response.headers["x-prediction-id"].split(",")
            answered.extend([version] * len(ids))
            labels = [
                {"prediction_id": i, "label": int(digits.target[r])}
                for i, r in zip(ids, rows, strict=True)
            ]
            assert http.post("/v1/feedback", json={"labels": labels}).status_code == 200
            bought = [
                {"prediction_id": i, "name": "purchase", "value": int(rng.random() < BUYS[version])}
                for i in ids
            ]
            sent = http.post("/v1/outcomes", json={"outcomes": bought})
            assert sent.status_code == 200 and sent.json()["accepted"] == 4, sent.text


def check_kpi_gate(versions: Versions, tmp_path: Path) -> None:
    config = kpi_project(versions, tmp_path)
    server = start_server(versions.home, "-c", str(config), env={"DNNOPS_ADMIN_TOKEN": "s3cret"})
    stop = threading.Event()
    answered: list[str] = []
    clients = [
        threading.Thread(target=shop, args=(server.url, stop, seed, answered), daemon=True)
        for seed in range(2)
    ]
    try:
        for client in clients:
            client.start()
        started = httpx.post(
            f"{server.url}/v1/endpoints/digits/rollout", json={"version": 2}, headers=ADMIN
        )
        assert started.status_code == 201, started.text
        rollout = wait_for_rollout(server.url, {"promoted", "rolled_back"})
        with Client(server.url, token="s3cret") as client:
            refused = client.outcomes("purchase", {"no-such-prediction": 1})
            typo = httpx.post(
                f"{server.url}/v1/outcomes",
                json={"outcomes": [{"prediction_id": "x", "name": "purchse", "value": 1}]},
                headers=ADMIN,
            )
            report = client.monitor("digits", since="1h")
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=30)
        server.stop()
    assert rollout["status"] == "rolled_back", rollout
    status = dnnops(versions, "rollout", "status", "digits", "--json")
    history = json.loads(status.stdout)["rollout"]["history"]
    failed = {g["gate"] for check in history for g in check["gates"] if g["outcome"] == "fail"}
    assert failed == {"kpi_purchase"}, history
    assert "2" in answered
    assert refused["refused"] == {"unknown_prediction_id": 1}
    assert typo.status_code == 422 and "outcomes[0].name" in typo.json()["error"]
    kpis = {v["slis"]["version"]: v["kpis"][0] for v in report["versions"]}
    stable, candidate = kpis["1"], kpis["2"]
    assert stable["kind"] == "rate" and stable["outcomes"] >= 30
    assert stable["low"] <= stable["value"] <= stable["high"]
    assert candidate["high"] < stable["low"], (candidate, stable)
