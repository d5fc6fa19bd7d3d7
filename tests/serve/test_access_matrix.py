"""Every route, every role: the role each route needs, refused (401 without credentials,
403 below the role or on another model) and granted (anything but 401 and 403) for a key
of each role, route by route. gRPC's RPCs (health, metadata, inference) are open as
HTTP's inference routes are: tests/serve/test_grpc.py calls them with no credentials."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dnnops.home import resolve_home
from dnnops.registry.api_keys import ROLES, KeyStore
from dnnops.registry.open import open_database_registry
from dnnops.serve.app import ROUTE_TABLES
from tests.serve.conftest import Server, start_server

ROW = [0.0] * 64
V2 = {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": ROW}]}
NEEDS: dict[tuple[str, str], str | None] = {  # (method, path) -> the role, None: open
    ("GET", "/v2/health/live"): None,
    ("GET", "/v2/health/ready"): None,
    ("GET", "/v2"): None,
    ("GET", "/v2/models/{name}"): None,
    ("GET", "/v2/models/{name}/versions/{version}"): None,
    ("GET", "/v2/models/{name}/ready"): None,
    ("GET", "/v2/models/{name}/versions/{version}/ready"): None,
    ("POST", "/v2/models/{name}/infer"): None,
    ("POST", "/v2/models/{name}/versions/{version}/infer"): None,
    ("POST", "/v1/models/{name}:predict"): None,
    ("GET", "/metrics"): None,
    ("GET", "/v1/endpoints"): None,
    ("GET", "/v1/endpoints/{name}"): None,
    ("GET", "/dashboard"): None,
    ("GET", "/dashboard/static/{name}"): None,
    ("GET", "/runbooks/{page}"): None,
    ("GET", "/v1/dashboard/{name}"): "reader",
    ("GET", "/v1/predictions/{prediction_id}"): "reader",
    ("GET", "/v1/monitor/{name}"): "reader",
    ("GET", "/v1/labels/queue/{name}"): "reader",
    ("POST", "/v1/models/{name}:explain"): "reader",
    ("POST", "/v1/feedback"): "labeler",
    ("POST", "/v1/outcomes"): "labeler",
    ("POST", "/v1/endpoints/{name}/rollout"): "deployer",
    ("POST", "/v1/endpoints/{name}/rollback"): "deployer",
    ("POST", "/v1/endpoints/{name}/versions"): "admin",
    ("GET", "/v1/registry/models"): "reader",
    ("GET", "/v1/registry/models/{name}/versions"): "reader",
    ("POST", "/v1/registry/models/{name}/versions"): "deployer",
    ("GET", "/v1/registry/models/{name}/versions/{ref}"): "reader",
    ("GET", "/v1/registry/models/{name}/versions/{ref}/verify"): "reader",
    ("PUT", "/v1/registry/models/{name}/versions/{number}/status"): "deployer",
    ("POST", "/v1/registry/models/{name}/versions/{number}/files"): "deployer",
    ("GET", "/v1/registry/models/{name}/aliases"): "reader",
    ("PUT", "/v1/registry/models/{name}/aliases/{alias}"): "deployer",
    ("GET", "/v1/registry/audit"): "reader",
    ("POST", "/v1/registry/audit"): "deployer",
    ("GET", "/v1/registry/uploads/{digest}"): "deployer",
    ("PUT", "/v1/registry/uploads/{digest}"): "deployer",
    ("GET", "/v1/registry/artifacts/{digest}"): "reader",
    ("HEAD", "/v1/registry/artifacts/{digest}"): "reader",
    ("GET", "/v1/registry/runs"): "reader",
    ("POST", "/v1/registry/runs"): "deployer",
    ("GET", "/v1/registry/runs/{run_id}"): "reader",
    ("POST", "/v1/registry/runs/{run_id}/epochs"): "deployer",
    ("POST", "/v1/registry/runs/{run_id}/checkpoints"): "deployer",
    ("PUT", "/v1/registry/runs/{run_id}/status"): "deployer",
}
ACROSS_MODELS = {
    "/v1/registry/models",
    "/v1/registry/audit",
    "/v1/registry/runs",
    "/v1/registry/artifacts/{digest}",
}
"""Reader routes that list or fetch across models: a key limited to another model gets
only what it may read (tests/registry/test_both_ways.py), not a 403."""


@pytest.fixture(scope="module")
def keyed(
    trained_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, dict[str, str]]]:
    home = tmp_path_factory.mktemp("matrix") / "home"
    shutil.copytree(trained_home, home)
    registry = open_database_registry(resolve_home(home))
    store = KeyStore(registry.engine)
    keys = {role: store.create(f"k-{role}", role)[0] for role in ROLES}
    keys["fraud reader"] = store.create("k-fraud", "reader", model="fraud")[0]
    running = start_server(home, "--model", "digits@production", env={"DNNOPS_ADMIN_TOKEN": ""})
    yield running, keys
    running.stop()


def test_every_route_is_in_the_matrix() -> None:
    declared = {(r.method, r.path) for table in ROUTE_TABLES for r in table}
    assert declared == set(NEEDS), "a route without a stated role"


def test_each_role_is_refused_and_granted_route_by_route(
    keyed: tuple[Server, dict[str, str]],
) -> None:
    server, keys = keyed
    record = open_database_registry(resolve_home(server.home)).resolve("digits", 1)
    assert record.run_id is not None
    placeholders = {
        "{ref}": "1",
        "{number}": "1",
        "{alias}": "staging",
        "{digest}": record.manifest_sha256,
        "{run_id}": record.run_id,
    }
    with httpx.Client(base_url=server.url, timeout=60) as http:
        pid = http.post("/v1/models/digits:predict", json={"instances": [ROW]}).json()[
            "prediction_ids"
        ][0]

        def call(method: str, path: str, key: str | None) -> int:
            url = (
                path.replace("{name}", "digits")
                .replace("{version}", "1")
                .replace("{prediction_id}", pid)
            )
            if path == "/dashboard/static/{name}":
                url = "/dashboard/static/app.js"
            url = url.replace("{page}", "drift")
            for placeholder, value in placeholders.items():
                url = url.replace(placeholder, value)
            body = _body(path, pid)
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            return http.request(method, url, json=body, headers=headers).status_code

        for (method, path), needed in NEEDS.items():
            anonymous = call(method, path, None)
            if needed is None:
                assert anonymous not in (401, 403), (method, path, anonymous)
                continue
            assert anonymous == 401, (method, path, anonymous)
            for role in ROLES:
                status = call(method, path, keys[role])
                if ROLES.index(role) >= ROLES.index(needed):
                    assert status not in (401, 403), (method, path, role, status)
                else:
                    assert status == 403, (method, path, role, status)
            if needed == "reader" and path not in ACROSS_MODELS:
                assert call(method, path, keys["fraud reader"]) == 403, (path, "another model")


def _body(path: str, pid: str) -> object:
    if path.endswith("/infer"):
        return V2
    if path.endswith((":predict", ":explain")):
        return {"instances": [ROW]}
    if path == "/v1/feedback":
        return {"labels": [{"prediction_id": pid, "label": 0}]}
    if path == "/v1/outcomes":
        return {"outcomes": []}
    return {}
