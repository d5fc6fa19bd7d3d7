"""Durability and operations under load: SIGKILL loses no acknowledged record, a hot swap
fails no request, SIGTERM drains and flushes; the log and feedback commands."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import BuiltFolders, CliResult
from tests.serve.conftest import start_server, two_digits_models

BODY = json.dumps(
    {"inputs": [{"name": "input", "shape": [2, 64], "datatype": "FP32", "data": [0.0] * 128}]}
).encode()


def _hammer(
    url: str,
    stop: threading.Event,
    acknowledged: list[str],
    failures: list[str],
    versions: list[str],
) -> None:
    with httpx.Client(base_url=url, timeout=10) as http:
        while not stop.is_set():
            try:
                response = http.post("/v2/models/digits/infer", content=BODY)
            except httpx.HTTPError as exc:
                failures.append(type(exc).__name__)
                return
            if response.status_code == 200:
                acknowledged.extend(response.headers["x-prediction-id"].split(","))
                versions.append(response.headers["x-model-version"])
            else:
                failures.append(f"{response.status_code} {response.text}")


def _load(
    url: str, clients: int = 4
) -> tuple[threading.Event, list[threading.Thread], list[str], list[str], list[str]]:
    stop = threading.Event()
    acknowledged: list[str] = []
    failures: list[str] = []
    versions: list[str] = []
    threads = [
        threading.Thread(target=_hammer, args=(url, stop, acknowledged, failures, versions))
        for _ in range(clients)
    ]
    for thread in threads:
        thread.start()
    return stop, threads, acknowledged, failures, versions


@pytest.mark.slow
def test_sigkill_under_load_loses_no_acknowledged_record(
    trained_home: Path, cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start_server(trained_home, "--model", "digits@production")
    stop, threads, acknowledged, _, _ = _load(server.url)
    time.sleep(1.5)
    server.process.kill()  # SIGKILL: no shutdown hooks, no flush
    server.process.wait(timeout=30)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert len(acknowledged) > 50
    monkeypatch.setenv("DNNOPS_HOME", str(trained_home))
    logged = cli("logs", "show", "--jsonl", "--limit", "1000000")
    assert logged.code == 0, logged.err
    ids = {json.loads(line)["id"] for line in logged.out.splitlines()}
    missing = set(acknowledged) - ids
    assert not missing, f"{len(missing)} acknowledged predictions are not in the log"


@pytest.mark.slow
def test_hot_swap_under_load_fails_no_request(tmp_path: Path, built_folders: BuiltFolders) -> None:
    home = built_folders.copy(two_digits_models, tmp_path / "p") / "home"
    server = start_server(home, "--model", "digits@1", env={"DNNOPS_ADMIN_TOKEN": "t"})
    stop, threads, acknowledged, failures, versions = _load(server.url)
    time.sleep(0.5)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        swapped = http.post(
            "/v1/endpoints/digits/versions",
            json={"version": 2},
            headers={"Authorization": "Bearer t"},
        )
        assert swapped.status_code == 200, swapped.text
    time.sleep(1.5)  # traffic on the new version while the old one drains and retires
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    code, _ = server.stop()
    assert failures == []
    assert versions[0] == "1" and versions[-1] == "2"
    assert code == 0
    assert len(acknowledged) > 20


def test_sigterm_turns_unready_drains_and_exits_cleanly(trained_home: Path) -> None:
    server = start_server(trained_home, "--model", "digits@production")
    with httpx.Client(base_url=server.url, timeout=10) as http:
        ids = http.post("/v2/models/digits/infer", content=BODY).headers["x-prediction-id"]
    code, err = server.stop(signal.SIGTERM)
    assert code == 0, err
    assert "Traceback" not in err
    records = [p for p in (trained_home / "logs" / "predictions").glob("*.log")]
    assert records and any(ids.split(",")[0].encode() in p.read_bytes() for p in records)


def test_feedback_file_and_logs_show(
    trained_home: Path,
    cli: Callable[..., CliResult],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("DNNOPS_HOME", str(trained_home))
    server = start_server(trained_home, "--model", "digits@production")
    with httpx.Client(base_url=server.url, timeout=10) as http:
        ids = (
            http.post("/v2/models/digits/infer", content=BODY).headers["x-prediction-id"].split(",")
        )
    labels = tmp_path / "labels.csv"
    labels.write_text(f"prediction_id,label\n{ids[0]},3\n{ids[1]},4\n")
    assert cli("feedback", str(labels)).code == 0
    server.stop()
    shown = cli("logs", "show", "--id", ids[0], "--jsonl")
    record = json.loads(shown.out.splitlines()[0])
    assert record["endpoint"] == "digits" and record["status"] == 200
    assert len(record["inputs"]) == 64 and len(record["probabilities"]) == 10
    feedback = cli("logs", "show", "--feedback", "--jsonl").out.splitlines()
    assert {json.loads(line)["prediction_id"] for line in feedback} >= set(ids)
    human = cli("logs", "show", "--endpoint", "digits", "--since", "1h")
    assert human.code == 0 and "digits" in human.out
    bad = tmp_path / "bad.csv"
    bad.write_text("id,y\n1,2\n")
    assert cli("feedback", str(bad)).code == 2
