"""Scoped tokens: labels steer canaries and retraining, and reads show logged inputs, so
once any token is set each needs its own scope's token (or the admin token)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import subprocess_env
from tests.serve.conftest import Server, start_server

TOKENS = {"DNNOPS_ADMIN_TOKEN": "adm", "DNNOPS_LABELS_TOKEN": "lab", "DNNOPS_READ_TOKEN": "rea"}
INFER = "/v2/models/digits/infer"
BODY = {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [0] * 64}]}


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@pytest.fixture(scope="module")
def scoped(trained_home: Path) -> Iterator[Server]:
    running = start_server(trained_home, "--model", "digits@production", env=TOKENS)
    yield running
    running.stop()


def test_each_route_answers_only_its_scope(scoped: Server) -> None:
    with httpx.Client(base_url=scoped.url, timeout=30) as http:
        answered = http.post(INFER, json=BODY)  # inference stays open
        assert answered.status_code == 200
        pid = answered.headers["x-prediction-id"]
        labels = {"labels": [{"prediction_id": pid, "label": 3}]}
        reads = ["/v1/monitor/digits", "/v1/dashboard/digits", f"/v1/predictions/{pid}"]
        expected = {None: 401, "nope": 403, "rea": 403, "lab": 200, "adm": 200}
        for token, status in expected.items():
            got = http.post("/v1/feedback", json=labels, headers=bearer(token))
            assert got.status_code == status, (token, got.text)
        for route in reads:
            for token, status in {None: 401, "lab": 403, "rea": 200, "adm": 200}.items():
                got = http.get(route, headers=bearer(token))
                assert got.status_code == status, (route, token, got.text)
        assert "DNNOPS_LABELS_TOKEN" in http.post("/v1/feedback", json=labels).json()["error"]
        admin = "/v1/endpoints/digits/versions"
        assert http.post(admin, json={"version": 1}, headers=bearer("lab")).status_code == 403


def test_serving_beyond_loopback_without_a_token_is_refused(trained_home: Path) -> None:
    env = subprocess_env(trained_home)
    for name in TOKENS:
        env.pop(name, None)
    refused = subprocess.run(
        [sys.executable, "-m", "dnnops", "serve", "--host", "0.0.0.0", "--port", "0",
         "--model", "digits@production"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "--insecure" in refused.stderr and "DNNOPS_LABELS_TOKEN" in refused.stderr
