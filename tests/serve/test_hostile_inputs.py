"""What a probe of hostile inputs found, each now a named 4xx instead of a 500 that burns
the availability budget: numbers that overflow float32 once scaled, a non-object
``parameters``, a non-ASCII binary-header length; the admin load route's array body,
``"live": "no"`` and a slot held by another model's version; a window too long to mean
anything; and no training value of a sensitive column in a model's metadata."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

import dnnops
from dnnops.data.example import example_instance
from dnnops.data.profile import FeatureProfile, Profile
from dnnops.data.schema import ColumnSchema, Schema
from tests.conftest import CliResult
from tests.serve.conftest import Server, start_server
from tests.serve.test_invalid_output import NanAboveTen

ADMIN = {"Authorization": "Bearer adm"}


@pytest.fixture(scope="module")
def probed(trained_home: Path) -> Iterator[Server]:
    reference = np.random.default_rng(0).normal(size=(50, 4)).astype("float32")
    torch.manual_seed(0)
    dnnops.log_model(NanAboveTen(), name="other", reference=reference, home=trained_home)
    running = start_server(
        trained_home, "--model", "digits@production", env={"DNNOPS_ADMIN_TOKEN": "adm"}
    )
    yield running
    running.stop()


def test_hostile_requests_get_named_client_errors_never_a_5xx(probed: Server) -> None:
    with httpx.Client(base_url=probed.url, timeout=30) as http:
        huge = [1e308] + [0.0] * 63
        v1 = http.post("/v1/models/digits:predict", json={"instances": [huge]})
        assert v1.status_code == 422 and "too large to compute" in v1.json()["error"], v1.text
        tensor = {"name": "input", "shape": [1, 64], "datatype": "FP32", "data": huge}
        v2 = http.post("/v2/models/digits/infer", json={"inputs": [tensor]})
        assert v2.status_code == 422, v2.text
        fine = {**tensor, "data": [0.0] * 64}
        for body, field in (
            ({"inputs": [fine], "parameters": [1, 2]}, "parameters"),
            ({"inputs": [fine], "outputs": [{"name": "label", "parameters": "x"}]}, "outputs[0]"),
        ):
            answer = http.post("/v2/models/digits/infer", json=body)
            assert answer.status_code == 400 and field in answer.json()["error"], answer.text
        arabic_twelve = "\u0661\u0662".encode()
        odd = http.post(
            "/v2/models/digits/infer",
            content=b'{"inputs": []}',
            headers=[(b"Inference-Header-Content-Length", arabic_twelve)],
        )
        assert odd.status_code == 400, odd.text
        load = "/v1/endpoints/digits/versions"
        assert http.post(load, json=[1], headers=ADMIN).status_code == 400
        live = http.post(load, json={"version": 1, "live": "no"}, headers=ADMIN)
        assert live.status_code == 400 and "live" in live.json()["error"]
        taken = http.post(load, json={"model": "other", "version": 1}, headers=ADMIN)
        assert taken.status_code == 409 and "already serves version 1 of digits" in taken.text
        for route in ("/v1/dashboard/digits", "/v1/monitor/digits"):
            forever = http.get(route, params={"since": "99999999999d"}, headers=ADMIN)
            assert forever.status_code == 400 and "since" in forever.json()["error"], forever.text
        metrics = http.get("/metrics").text
    assert 'status="500"' not in metrics


def test_a_models_metadata_shows_no_training_value_of_a_sensitive_column() -> None:
    schema = Schema(
        kind="table",
        columns=[
            ColumnSchema(name="postcode", type="category", nullable=False, sensitive=True),
            ColumnSchema(name="amount", type="float", nullable=False),
        ],
    )
    profile = Profile(
        rows=10,
        features=[
            FeatureProfile(name="postcode", kind="category", count=10, null_count=0,
                           frequencies={"SW1A 1AA": 9, "EC1A 1BB": 1}),
            FeatureProfile(name="amount", kind="numeric", count=10, null_count=0,
                           percentiles=[1.0, 2.0, 3.0]),
        ],
    )  # fmt: skip
    example = example_instance(schema, profile)
    assert example == {"postcode": None, "amount": 2.0}


def test_a_home_its_database_artifacts_and_logs_are_its_owners_alone(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    """Training values (profiles, examples) and live inputs once sat in files every local
    user could read: the home folder is 0700, the database, artifacts and log segments
    0600. An exported model is the user's file and stays readable (0644)."""
    home = tmp_path / "home"
    reference = np.random.default_rng(0).normal(size=(50, 4)).astype("float32")
    dnnops.log_model(NanAboveTen(), name="private", reference=reference, home=home)
    running = start_server(home, "--model", "private@1")
    try:
        with httpx.Client(base_url=running.url, timeout=30) as http:
            reply = http.post("/v1/models/private:predict", json={"instances": [[0.0] * 4]})
            assert reply.status_code == 200, reply.text
    finally:
        running.stop()  # the log segment is flushed and closed
    mode = lambda path: path.stat().st_mode & 0o777  # noqa: E731
    assert mode(home) == 0o700
    assert mode(home / "dnnops.db") == 0o600
    artifacts = [p for p in (home / "artifacts").rglob("*") if p.is_file()]
    segments = [p for p in (home / "logs").rglob("*.log") if p.is_file()]
    assert artifacts and segments
    assert {mode(p) for p in artifacts + segments} == {0o600}, "owner only"
    assert {mode(p.parent) for p in segments} == {0o700}
    exported = tmp_path / "model.onnx"
    done = cli("models", "export", "private@1", "--out", str(exported), "--home", str(home))
    assert done.code == 0, done.err
    umask = os.umask(0)
    os.umask(umask)
    assert mode(exported) == 0o644 & ~umask
