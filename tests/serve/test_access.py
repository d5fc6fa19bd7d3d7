"""Scoped tokens: labels steer canaries and retraining, and reads show logged inputs, so
once any token is set each needs its own scope's token (or the admin token)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dnnops.home import resolve_home
from dnnops.registry.open import open_registry
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


def test_named_keys_resolve_to_roles_and_the_audit_log_names_them(
    trained_home: Path, tmp_path: Path
) -> None:
    """No shared token: issued keys alone secure the server. Each route takes the roles
    that cover it, a key limited to a model only that model, an expired or revoked key
    nothing; the audit log names the key, whatever the client says."""
    home = tmp_path / "home"
    shutil.copytree(trained_home, home)

    def keys(*args: str) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "dnnops", "keys", *args, "--json"],
            env=subprocess_env(home), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        found = json.loads(done.stdout)
        return dict(found) if isinstance(found, dict) else {"list": found}

    reader = keys("create", "alice", "--role", "reader")["key"]
    labeler = keys("create", "labelling", "--role", "labeler")["key"]
    deployer = keys("create", "ci", "--role", "deployer", "--model", "digits")["key"]
    elsewhere = keys("create", "other-team", "--role", "deployer", "--model", "fraud")["key"]
    expired = keys("create", "old", "--role", "admin", "--expires", "1s")["key"]
    assert reader.startswith("dnk_") and len({reader, labeler, deployer}) == 3
    env = {name: "" for name in TOKENS}  # none of the shared tokens
    server = start_server(home, "--model", "digits@production", env=env)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            answered = http.post(INFER, json=BODY)  # inference stays open
            assert answered.status_code == 200
            pid = answered.headers["x-prediction-id"]

            def label(token: str, value: int) -> int:
                body = {"labels": [{"prediction_id": pid, "label": value}]}
                claimed = {**bearer(token), "x-actor": "mallory"}  # never believed
                return http.post("/v1/feedback", json=body, headers=claimed).status_code

            assert http.get("/v1/monitor/digits").status_code == 401
            for token, status in {reader: 200, labeler: 200, deployer: 200, expired: 403}.items():
                assert http.get("/v1/monitor/digits", headers=bearer(token)).status_code == status
            assert label(reader, 3) == 403
            assert label(labeler, 3) == 200 and label(labeler, 4) == 200  # a relabel: audited
            rollback = "/v1/endpoints/digits/rollback"
            assert http.post(rollback, headers=bearer(labeler)).status_code == 403
            assert http.post(rollback, headers=bearer(deployer)).status_code == 409  # let in
            refused = http.post(rollback, headers=bearer(elsewhere))
            assert refused.status_code == 403 and "on fraud" in refused.json()["error"]
            versions = "/v1/endpoints/digits/versions"
            load = http.post(versions, json={"version": 1}, headers=bearer(deployer))
            assert load.status_code == 403 and "admin" in load.json()["error"]
            keys("revoke", "alice")
            deadline = time.monotonic() + 15
            while http.get("/v1/monitor/digits", headers=bearer(reader)).status_code != 403:
                assert time.monotonic() < deadline, "a revoked key still reads"
                time.sleep(0.5)
    finally:
        server.stop()
    listed = {k["name"]: k for k in keys("list")["list"]}
    assert listed["alice"]["revoked_at"] is not None
    assert listed["labelling"]["last_used_at"] is not None and listed["old"]["last_used_at"] is None
    audit = open_registry(resolve_home(home)).audit_log("digits", limit=20)
    [relabel] = [entry for entry in audit if entry["action"] == "relabel"]
    assert relabel["actor"] == "key:labelling"
