"""Traces, Prometheus exposition validity, and the load generator."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dnnops.home import resolve_home
from dnnops.serve.launch import BackgroundServer, build_state
from tests.conftest import CliResult
from tests.serve.conftest import Server

BODY = (
    b'{"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": ['
    + b", ".join([b"0.0"] * 64)
    + b"]}]}"
)


def test_each_request_is_traced_through_decode_queue_infer_encode(trained_home: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    state = build_state(resolve_home(trained_home), None, ["digits@production"])
    with BackgroundServer(state) as url:
        assert (
            httpx.post(f"{url}/v2/models/digits/infer", content=BODY, timeout=10).status_code == 200
        )
    names = [span.name for span in exporter.get_finished_spans()]
    for name in ("decode", "queue", "infer", "encode"):
        assert name in names, names
    queue = next(s for s in exporter.get_finished_spans() if s.name == "queue")
    infer = next(s for s in exporter.get_finished_spans() if s.name == "infer")
    assert queue.end_time is not None and infer.start_time is not None
    assert queue.end_time <= infer.start_time + 1_000_000  # queue ends where the batch begins


def test_the_event_loop_lag_is_exposed_and_small_on_an_idle_server(server: Server) -> None:
    time.sleep(0.3)  # a few probes
    with server.client() as http:
        text = http.get("/metrics").text
    [line] = [x for x in text.splitlines() if x.startswith("dnnops_event_loop_lag_seconds ")]
    assert 0.0 <= float(line.split()[1]) < 1.0


def test_metrics_pass_promtool(server: Server) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("DNNOPS_REQUIRE_ALL_TESTS") == "1":
            pytest.fail("promtool is required here (Debian package prometheus)")
        pytest.skip("promtool not installed; apt-get install prometheus to run this check")
    with server.client() as http:
        http.post("/v2/models/digits/infer", content=BODY)
        exposition = http.get("/metrics").content
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_loadtest_reports_rate_latency_and_errors(
    server: Server, cli: Callable[..., CliResult]
) -> None:
    result = cli("loadtest", server.url, "--duration", "1.5", "--concurrency", "4", "--json")
    assert result.code == 0, result.err
    summary = result.json()
    assert summary["requests"] > 10
    assert summary["errors"] == {}
    assert 0 < summary["p50_ms"] <= summary["p95_ms"] <= summary["p99_ms"]
    human = cli("loadtest", server.url, "--model", "digits", "--duration", "0.5")
    assert human.code == 0 and "req/s" in human.out
    assert cli("loadtest", server.url, "--model", "nope", "--duration", "0.5").code == 2


def test_requests_on_their_way_are_counted_until_queued_or_refused(trained_home: Path) -> None:
    state = build_state(resolve_home(trained_home), None, ["digits@production"])
    quiet = state.serve.model_copy(update={"close_when_quiet": True, "max_delay": 5.0})
    state.policies = replace(state.policies, serve=quiet)
    with BackgroundServer(state) as url, httpx.Client(base_url=url, timeout=10) as http:
        for body in (BODY, b"{not json", BODY.replace(b"[1, 64]", b"[1, 63]"), BODY):
            http.post("/v2/models/digits/infer", content=body)
        started = time.monotonic()
        assert http.post("/v2/models/digits/infer", content=BODY).status_code == 200
        assert time.monotonic() - started < 2.0  # not the 5 s delay: nothing else was coming
        assert state.lifecycle.arriving == 0


def test_each_background_loop_counts_its_failed_ticks_apart() -> None:
    from prometheus_client import generate_latest

    from dnnops.serve.metrics import ServerMetrics

    metrics = ServerMetrics()
    metrics.controller_errors.labels("monitor").inc()
    text = generate_latest(metrics.registry).decode()
    assert 'dnnops_controller_errors_total{loop="monitor"} 1.0' in text
    assert 'dnnops_controller_errors_total{loop="rollout"} 0.0' in text  # there from the start
