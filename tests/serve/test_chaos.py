"""Failures of what the server stands on, under traffic: the log's disk refuses writes,
PostgreSQL restarts, the artifact store disappears during a version load. Inference goes
on where it can, every refusal names its cause, and no acknowledged record is lost."""

from __future__ import annotations

import json
import resource
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from dnnops.predlog.frames import FrameStats
from dnnops.predlog.reader import read_predictions
from tests.conftest import BuiltFolders
from tests.serve.conftest import Server, start_server, train_digits, two_digits_models

BODY = json.dumps(
    {"inputs": [{"name": "input", "shape": [2, 64], "datatype": "FP32", "data": [1.0] * 128}]}
).encode()
ADMIN = {"Authorization": "Bearer t"}


class Traffic:
    """Clients sending requests one after another until stopped; what each answer was."""

    def __init__(self, url: str, clients: int = 2) -> None:
        self.url = url
        self.stop = threading.Event()
        self.acknowledged: list[str] = []
        self.failures: list[str] = []
        self.versions: list[str] = []
        self.threads = [threading.Thread(target=self._send) for _ in range(clients)]
        for thread in self.threads:
            thread.start()

    def _send(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self.stop.is_set():
                response = http.post("/v2/models/digits/infer", content=BODY)
                if response.status_code == 200:
                    self.acknowledged.extend(response.headers["x-prediction-id"].split(","))
                    self.versions.append(response.headers["x-model-version"])
                else:
                    self.failures.append(f"{response.status_code} {response.text}")

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


def logged_ids(home: Path) -> tuple[set[str], FrameStats]:
    stats = FrameStats()
    records = read_predictions(home / "logs" / "predictions", stats=stats)
    return {r.id for r in records if r.id is not None}, stats


def file_size_limit(limit: int) -> Callable[[], None]:
    """A child's files may not grow past ``limit`` bytes: a write beyond fails with EFBIG,
    the same ``OSError`` path a full disk (ENOSPC) takes, without needing a mount."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.slow
def test_a_log_that_refuses_writes_answers_503_and_acknowledges_only_what_it_logged(
    trained_home: Path,
) -> None:
    database = (trained_home / "dnnops.db").stat().st_size
    server = start_server(
        trained_home,
        "--model",
        "digits@production",
        preexec=file_size_limit(database + 256 * 1024),  # the log fills after ~200 requests
    )
    acknowledged: list[str] = []
    refused: list[httpx.Response] = []
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for _ in range(2000):
                response = http.post("/v2/models/digits/infer", content=BODY)
                if response.status_code == 200:
                    acknowledged.extend(response.headers["x-prediction-id"].split(","))
                else:
                    refused.append(response)
                if len(refused) >= 20:
                    break
            metrics = http.get("/metrics").text
            assert http.get("/v2/health/live").status_code == 200, "the server itself lives on"
    finally:
        code, output = server.stop()
    assert len(acknowledged) > 100 and len(refused) == 20
    assert {r.status_code for r in refused} == {503}
    error = refused[0].json()["error"]
    assert "prediction log cannot be written (File too large)" in error, error
    assert refused[0].headers["retry-after"] == "5"
    assert 'reason="log_unwritable"' in metrics
    assert code == 0, output
    ids, stats = logged_ids(trained_home)
    assert set(acknowledged) <= ids, "an acknowledged prediction is missing from the log"
    assert stats.corrupt == 0 and not stats.torn_tail, "a failed write left part of itself"


@pytest.mark.slow
def test_postgresql_restarted_under_traffic_stops_no_inference_and_the_control_plane_recovers(
    tmp_path: Path,
) -> None:
    from tests.postgres import create_database, postgres_server, restart

    with postgres_server() as postgres:
        env = {"DNNOPS_DB_URL": create_database(postgres, "chaos"), "DNNOPS_ADMIN_TOKEN": "t"}
        home = tmp_path / "home"
        train_digits(tmp_path, home, env=env)
        server = start_server(home, "--model", "digits@production", env=env)
        traffic = Traffic(server.url)
        try:
            time.sleep(1.0)
            restart(postgres, down_s=2.0)  # every pooled connection dies with it
            time.sleep(1.0)
            recovered = _admin_load_succeeds(server, version="1", within_s=30)
        finally:
            traffic.finish()
            code, output = server.stop()
    assert recovered.status_code == 200, recovered.text
    assert traffic.failures == [], traffic.failures[:3]
    assert len(traffic.acknowledged) > 100
    assert code == 0, output
    ids, _ = logged_ids(home)
    assert set(traffic.acknowledged) <= ids


@pytest.mark.slow
def test_an_unreachable_artifact_store_fails_the_load_by_name_while_the_version_serves(
    tmp_path: Path, built_folders: BuiltFolders
) -> None:
    home = built_folders.copy(two_digits_models, tmp_path / "p") / "home"
    server = start_server(home, "--model", "digits@1", env={"DNNOPS_ADMIN_TOKEN": "t"})
    traffic = Traffic(server.url)
    try:
        (home / "artifacts").rename(home / "artifacts.unmounted")  # the store goes away
        refused = httpx.post(
            f"{server.url}/v1/endpoints/digits/versions", json={"version": 2}, headers=ADMIN
        )
        time.sleep(0.5)
        (home / "artifacts.unmounted").rename(home / "artifacts")
        loaded = _admin_load_succeeds(server, version="2", within_s=30)
        time.sleep(0.5)
    finally:
        traffic.finish()
        code, output = server.stop()
    assert refused.status_code in (500, 503), refused.text  # a server-side failure, named
    assert "missing from the artifact store" in refused.json()["error"], refused.text
    assert loaded.status_code == 200, loaded.text
    assert traffic.failures == [], traffic.failures[:3]
    assert "1" in traffic.versions and traffic.versions[-1] == "2"
    assert code == 0, output


def _admin_load_succeeds(server: Server, *, version: str, within_s: float) -> httpx.Response:
    """Load ``version`` (it reads the registry and the artifacts, and writes the audit log)
    until it succeeds or ``within_s`` passes; the last answer."""
    deadline = time.monotonic() + within_s
    while True:
        answer = httpx.post(
            f"{server.url}/v1/endpoints/digits/versions",
            json={"version": int(version)},
            headers=ADMIN,
            timeout=60,
        )
        if answer.status_code == 200 or time.monotonic() > deadline:
            return answer
        time.sleep(0.5)
