"""``dnnops serve --workers 2``: real worker processes behind one port. Both answer, the
metrics and the prediction log count every worker, an admin load reaches every worker,
a crashed worker is replaced, and SIGTERM drains them all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dnnops.predlog.frames import FrameStats
from dnnops.predlog.reader import read_records
from tests.conftest import BuiltFolders, subprocess_env
from tests.serve.conftest import Server, start_server, two_digits_models

BODY = json.dumps({"instances": [[0.0] * 64]}).encode()
TOKEN = "s3cret"


def workers_of(server: Server) -> list[int]:
    """Pids of the supervisor's live worker processes (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == server.process.pid and fields[0] != "Z":  # fields[1]: the ppid
            found.append(int(stat.parent.name))
    return found


def predict_fresh(url: str) -> httpx.Response:
    """One request on its own connection, so the kernel may hand it to any worker."""
    with httpx.Client(base_url=url, timeout=30) as http:
        return http.post("/v1/models/digits:predict", content=BODY)


def predict_many(url: str, count: int) -> list[httpx.Response]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: predict_fresh(url), range(count)))


def total_requests(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "dnnops_requests"
        for sample in family.samples
        if sample.name == "dnnops_requests_total"
    )


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory, built_folders: BuiltFolders) -> Path:
    folder = built_folders.copy(two_digits_models, tmp_path_factory.mktemp("workers") / "p")
    return folder / "home"


@pytest.fixture
def pair(two_versions: Path) -> Iterator[Server]:
    server = start_server(
        two_versions, "--model", "digits@1", "--workers", "2", env={"DNNOPS_ADMIN_TOKEN": TOKEN}
    )
    yield server
    server.stop()


def test_both_workers_answer_and_every_request_is_counted_and_logged(
    pair: Server, two_versions: Path
) -> None:
    assert len(workers_of(pair)) == 2
    responses = predict_many(pair.url, 120)
    assert {r.status_code for r in responses} == {200}
    ids = [r.json()["prediction_ids"][0] for r in responses]
    # Each process names its predictions with its own random prefix.
    assert len({i.split("-")[0] for i in ids}) == 2, "one worker answered everything"
    # Whichever worker answers the scrape counts both workers' requests.
    assert [total_requests(pair.url) for _ in range(6)] == [120.0] * 6
    code, err = pair.stop(signal.SIGTERM)
    assert code == 0, err
    logged = {
        r["id"]
        for r in read_records(two_versions / "logs" / "predictions", "predictions", FrameStats())
        if r.get("status") == 200
    }
    assert set(ids) <= logged
    assert workers_of(pair) == []


def test_an_admin_load_reaches_every_worker(pair: Server) -> None:
    loaded = httpx.post(
        f"{pair.url}/v1/endpoints/digits/versions",
        json={"version": 2},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=60,
    )
    assert loaded.status_code == 200, loaded.text
    deadline = time.monotonic() + 30
    while True:  # siblings replay the load at their next controller tick (every second)
        versions = {r.headers["x-model-version"] for r in predict_many(pair.url, 24)}
        if versions == {"2"}:
            break
        assert time.monotonic() < deadline, f"still answering with {versions}"
        time.sleep(0.5)


def test_a_worker_that_dies_is_replaced_and_the_other_keeps_serving(pair: Server) -> None:
    first, second = workers_of(pair)
    os.kill(first, signal.SIGKILL)
    answered = [predict_fresh(pair.url).status_code for _ in range(20)]
    assert answered == [200] * 20  # the survivor takes every new connection
    deadline = time.monotonic() + 60
    while len(workers_of(pair)) < 2 or first in workers_of(pair):
        assert time.monotonic() < deadline, "the dead worker was not replaced"
        time.sleep(0.2)
    assert second in workers_of(pair)
    ready = httpx.get(f"{pair.url}/v2/health/ready", timeout=10)
    assert ready.status_code == 200


def test_workers_are_configured_in_dnnops_yaml_and_refused_below_one(
    two_versions: Path, tmp_path: Path
) -> None:
    config = tmp_path / "dnnops.yaml"
    config.write_text("name: digits\ndata: {source: 'builtin:digits'}\nserve: {workers: 2}\n")
    server = start_server(two_versions, "-c", str(config), "--model", "digits@1")
    try:
        assert len(workers_of(server)) == 2
        assert predict_fresh(server.url).status_code == 200
    finally:
        server.stop()
    config.write_text("name: digits\ndata: {source: 'builtin:digits'}\nserve: {workers: 0}\n")
    refused = start_failure(two_versions, "-c", str(config), "--model", "digits@1")
    assert "serve.workers" in refused


def start_failure(home: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "dnnops", "serve", "--port", "0", *args],
        env=subprocess_env(home),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    return done.stdout + done.stderr


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_killing_the_supervisor_stops_its_workers_and_removes_their_folder(
    two_versions: Path,
) -> None:
    server = start_server(two_versions, "--model", "digits@1", "--workers", "2")
    workers = workers_of(server)
    environ = Path(f"/proc/{workers[0]}/environ").read_bytes().split(b"\0")
    group = Path(next(v for v in environ if v.startswith(b"DNNOPS_SERVE_GROUP=")).decode()[19:])
    assert group.is_dir()
    server.process.kill()  # SIGKILL: no chance to stop anything itself
    server.process.wait(timeout=60)
    deadline = time.monotonic() + 60
    while any(alive(pid) for pid in workers) or group.exists():
        assert time.monotonic() < deadline, "orphaned workers kept running"
        time.sleep(0.2)
