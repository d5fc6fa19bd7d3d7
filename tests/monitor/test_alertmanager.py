"""Delivery through a real Alertmanager (Debian's ``prometheus-alertmanager``, started
here on a free port) configured by ``dnnops export alertmanager``: a server's page
reaches the page receiver, grouped by model and alert, while the model's ticket is held
back by the inhibition; once the page's cause goes, it is resolved there, and the ticket
it silenced is delivered to the ticket receiver."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
import yaml

import dnnops
from dnnops.config import ProjectConfig
from dnnops.monitor.judgements.alertmanager_config import alertmanager_config
from tests.monitor.conftest import Receiver, wait_for
from tests.serve.conftest import start_server
from tests.serve.test_invalid_output import NanAboveTen


def alertmanager_binary() -> str:
    found = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if found is None:
        if os.environ.get("DNNOPS_REQUIRE_ALL_TESTS") == "1":
            pytest.fail("Alertmanager is required here (Debian package prometheus-alertmanager)")
        pytest.skip("Alertmanager not installed; apt-get install prometheus-alertmanager")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    page, ticket = Receiver(), Receiver()
    yield page, ticket
    page.close()
    ticket.close()


def start_alertmanager(folder: Path, config: dict[str, Any]) -> tuple[subprocess.Popen[str], str]:
    (folder / "alertmanager.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    process = subprocess.Popen(
        [
            alertmanager_binary(),
            f"--config.file={folder / 'alertmanager.yml'}",
            f"--storage.path={folder / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # one instance: no gossip port
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        assert process.poll() is None, "Alertmanager exited; run it by hand to see why"
        assert time.monotonic() < deadline, "Alertmanager did not start"
        time.sleep(0.2)


def test_a_page_routes_groups_inhibits_its_tickets_and_resolves_through_alertmanager(
    tmp_path: Path, receivers: tuple[Receiver, Receiver]
) -> None:
    page, ticket = receivers
    settings: dict[str, Any] = {
        "name": "nan",
        "data": {"source": "unused.csv"},
        "monitor": {
            "evaluate_every": "1s",
            "cost_budget": 1e-12,  # a ticket from the first predictions on
            "webhook_url": {"page": page.url, "ticket": ticket.url},
            "alerts": {
                "invalid_outputs": 0.05,
                "min_predictions": 10,
                "for": {"invalid_outputs": 0, "cost": 0},
            },
        },
    }
    config = alertmanager_config(ProjectConfig.model_validate(settings))
    for route in [config["route"], *config["route"]["routes"]]:  # seconds, not minutes
        route.update(group_wait="1s", group_interval="1s")
    process, url = start_alertmanager(tmp_path, config)
    # the server posts to Alertmanager only: the receivers hear from Alertmanager alone
    settings["monitor"] = {**settings["monitor"], "webhook_url": None, "alertmanager_url": url}
    (tmp_path / "dnnops.yaml").write_text(json.dumps(settings))
    home = tmp_path / "home"
    reference = np.random.default_rng(0).normal(size=(100, 4)).astype("float32")
    torch.manual_seed(0)
    dnnops.log_model(NanAboveTen(), name="nan", reference=reference, home=home)
    server = start_server(home, "-c", str(tmp_path / "dnnops.yaml"), "--model", "nan@1")
    try:
        with server.client() as http:
            name = http.get("/v2/models/nan").json()["inputs"][0]["name"]

            def infer(first: float) -> int:
                body = {"inputs": [{"name": name, "shape": [1, 4], "datatype": "FP32",
                                    "data": [first, 0.0, 0.0, 0.0]}]}  # fmt: skip
                return http.post("/v2/models/nan/infer", json=body).status_code

            assert [infer(50.0) for _ in range(10)] == [500] * 10
            assert {infer(0.1) for _ in range(40)} == {200}  # 10 of 50 answered NaN
            wait_for(lambda: page.alerts("firing"), "Alertmanager never paged")
            [paged] = page.alerts("firing")[:1]
            assert paged["labels"]["alertname"] == "DnnopsInvalidOutputs"
            assert paged["labels"]["severity"] == "page" and paged["labels"]["version"] == "1"
            link = paged["annotations"]["runbook_url"]  # absolute: the server serves it
            assert link == f"{server.url}/runbooks/invalid-outputs", link
            page_text = httpx.get(link, timeout=30)
            assert page_text.status_code == 200 and "# Invalid outputs" in page_text.text
            assert json.loads(paged["annotations"]["evidence"])["invalid_outputs"] == 10
            assert page.bodies[0]["groupLabels"] == {
                "model": "nan",
                "alertname": "DnnopsInvalidOutputs",
                "version": "1",
            }
            firing = httpx.get(f"{url}/api/v2/alerts").json()
            muted = [a for a in firing if a["labels"]["alertname"] == "DnnopsCost"]
            assert muted and muted[0]["status"]["inhibitedBy"], "the cost ticket is inhibited"
            time.sleep(2)  # two group intervals: the inhibited ticket stays unsent
            assert ticket.bodies == []

            assert {infer(0.1) for _ in range(250)} == {200}  # 10 of 300: the cause is gone
            wait_for(lambda: page.alerts("resolved"), "the page was never resolved")
            assert page.alerts("resolved")[0]["labels"]["alertname"] == "DnnopsInvalidOutputs"
            wait_for(lambda: ticket.alerts("firing"), "the ticket stayed silenced")
            assert ticket.alerts("firing")[0]["labels"]["alertname"] == "DnnopsCost"
            assert all(a["labels"]["severity"] == "ticket" for a in ticket.alerts("firing"))
            metrics = http.get("/metrics").text
    finally:
        server.stop()
        process.terminate()
        process.wait(timeout=30)
    assert 'dnnops_alert_deliveries_total{outcome="delivered"}' in metrics
