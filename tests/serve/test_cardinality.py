"""Requests to names the server does not serve never create metric series, log records or
report rows of their own: they are refused 404 under the one ``unknown`` label."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import CliResult
from tests.serve.conftest import Server

GOOD = {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [0] * 64}]}


def series(http: httpx.Client) -> set[str]:
    """Every sample's name and labels in ``/metrics`` (values left out)."""
    text = http.get("/metrics").text
    return {line.rsplit(" ", 1)[0] for line in text.splitlines() if not line.startswith("#")}


def made_up(http: httpx.Client, count: int) -> None:
    for _ in range(count):
        name = uuid.uuid4().hex[:12]
        assert http.post(f"/v2/models/{name}/infer", json=GOOD).status_code == 404
        assert http.post(f"/v1/models/{name}:predict", content=b"{").status_code == 404
        assert http.post(f"/v2/models/digits/versions/{name}/infer", json=GOOD).status_code == 404


def test_a_thousand_made_up_names_add_no_series_no_records_and_no_report_rows(
    server: Server, cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    with server.client() as http:
        assert http.post("/v2/models/digits/infer", json=GOOD).status_code == 200
        made_up(http, 3)  # the one "unknown" series of each kind appear once
        before = series(http)
        made_up(http, 1000)
        after = series(http)
        assert after - before == set(), sorted(after - before)[:5]
        unknown = [s for s in after if 'endpoint="unknown"' in s]
        assert unknown and all('model=""' in s for s in unknown)
        report = http.get("/v1/monitor/digits?since=1h").json()
    endpoints = {v["slis"]["endpoint"] for v in report["versions"]}
    models = {v["slis"]["model"] for v in report["versions"]}
    assert endpoints == {"digits"} and models == {"digits"}, (endpoints, models)
    monkeypatch.setenv("DNNOPS_HOME", str(server.home))
    logged = cli("logs", "show", "--jsonl", "--limit", "100000")
    names = {line.split('"endpoint":"', 1)[1].split('"', 1)[0] for line in logged.out.splitlines()}
    assert names <= {"digits"}, names
