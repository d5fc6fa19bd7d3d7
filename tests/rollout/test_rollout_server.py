"""Rollouts on a real server: a good canary is promoted, a broken one rolled back while the
stable version keeps answering, a shadow never answers, a restart resumes a rollout."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import BuiltFolders
from tests.rollout.conftest import (
    ADMIN,
    ROLLOUT,
    Traffic,
    Versions,
    copy_versions,
    dnnops,
    wait_for_rollout,
)
from tests.rollout.kpi_gate import check_kpi_gate
from tests.rollout.replay import check_replay
from tests.serve.conftest import Server, start_server


@pytest.fixture(scope="module")
def server(versions: Versions) -> Iterator[Server]:
    running = start_server(
        versions.home, "-c", str(versions.config), env={"DNNOPS_ADMIN_TOKEN": "s3cret"}
    )
    yield running
    running.stop()


def aliases(versions: Versions) -> dict[str, int]:
    with sqlite3.connect(versions.home / "dnnops.db") as db:
        return dict(db.execute("select alias, version from model_aliases where model = 'digits'"))


def test_rollout_routes_refuse_bad_requests_with_named_errors(
    server: Server, versions: Versions
) -> None:
    route = f"{server.url}/v1/endpoints/digits/rollout"
    assert httpx.post(route, json={"version": 2}).status_code == 401
    wrong = httpx.post(route, json={"version": 2}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403
    cases = [
        (f"{server.url}/v1/endpoints/nope/rollout", {"version": 2}, 404, "unknown endpoint"),
        (route, {}, 400, "version: required"),
        (route, {"version": 99}, 404, "99"),
        (route, {"version": 2, "steps": [0, 50]}, 400, "steps"),
        (route, {"version": 2, "mode": "yolo"}, 400, "mode"),
        (route, {"version": 1}, 400, "already serves as the stable version"),
    ]
    for url, body, status, words in cases:
        response = httpx.post(url, json=body, headers=ADMIN)
        assert response.status_code == status, (body, response.text)
        assert words in response.json()["error"], response.json()
    broken_json = httpx.post(route, content=b"{", headers=ADMIN)
    assert broken_json.status_code == 400
    rollback = httpx.post(f"{server.url}/v1/endpoints/digits/rollback", headers=ADMIN)
    assert rollback.status_code == 409
    assert "no rollout to undo" in rollback.json()["error"]
    abort = dnnops(versions, "rollout", "abort", "digits")
    assert abort.returncode == 2
    assert "no rollout in progress" in abort.stderr
    unknown = dnnops(versions, "rollout", "status", "nope")
    assert unknown.returncode == 2
    assert "has no rollouts" in unknown.stderr


def test_a_good_canary_walks_every_step_and_is_promoted(server: Server, versions: Versions) -> None:
    traffic = Traffic(server.url, server.token).start()
    try:
        started = httpx.post(
            f"{server.url}/v1/endpoints/digits/rollout", json={"version": 2}, headers=ADMIN
        )
        assert started.status_code == 201, started.text
        assert started.json()["steps"] == [25, 50, 100]
        conflict = httpx.post(
            f"{server.url}/v1/endpoints/digits/rollout", json={"version": 3}, headers=ADMIN
        )
        assert conflict.status_code == 409
        assert "already rolls out version 2" in conflict.json()["error"]
        rollout = wait_for_rollout(server.url, {"promoted", "rolled_back"})
    finally:
        traffic.finish()
    assert rollout["status"] == "promoted", rollout
    assert set(traffic.statuses) == {200}
    assert {"1", "2"} <= set(traffic.versions)
    assert aliases(versions)["production"] == 2
    endpoint = httpx.get(f"{server.url}/v1/endpoints/digits").json()
    assert endpoint["live_version"] == "2"
    assert endpoint["canary_version"] is None


def test_a_broken_canary_is_rolled_back_while_the_stable_version_answers(
    server: Server, versions: Versions
) -> None:
    traffic = Traffic(server.url, server.token).start()
    try:
        started = httpx.post(
            f"{server.url}/v1/endpoints/digits/rollout", json={"version": 3}, headers=ADMIN
        )
        assert started.status_code == 201, started.text
        rollout = wait_for_rollout(server.url, {"promoted", "rolled_back"})
        answered_before = len(traffic.versions)
        time.sleep(1.5)  # the stable version keeps answering after the rollback
    finally:
        traffic.finish()
    assert rollout["status"] == "rolled_back", rollout
    assert rollout["step"] == 0, "rolled back at the first step, never fed more traffic"
    status = dnnops(versions, "rollout", "status", "digits", "--json")
    history = json.loads(status.stdout)["rollout"]["history"]
    verdicts = [check["verdict"] for check in history]
    assert verdicts.count("fail") == ROLLOUT["failure_threshold"]
    assert "pass" not in verdicts
    assert set(traffic.statuses) == {200}
    assert set(traffic.versions[answered_before:]) == {"2"}
    assert aliases(versions)["production"] == 2
    with sqlite3.connect(versions.home / "dnnops.db") as db:
        (state,) = db.execute("select status from model_versions where version = 3").fetchone()
        kinds = [k for (k,) in db.execute("select kind from alerts")]  # a tick may clear it
    assert state == "failed"
    assert "rollout" in kinds


def _queue_waits(url: str) -> tuple[float, float]:
    """(requests that waited at most 100 ms for a batch, all requests) since the start."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    fast = total = 0.0
    for line in text.splitlines():
        if line.startswith("dnnops_queue_duration_seconds_bucket{") and 'le="0.1"' in line:
            fast += float(line.rsplit(" ", 1)[1])
        elif line.startswith("dnnops_queue_duration_seconds_count{"):
            total += float(line.rsplit(" ", 1)[1])
    return fast, total


def test_the_control_plane_never_holds_a_sequential_client(
    server: Server, versions: Versions
) -> None:
    """One client sending small requests one after another while a canary is judged (with
    labels arriving) and rolled back: control work never runs on the event loop, so no
    request waits more than 100 ms for its batch and none is answered 5xx."""
    fast_before, total_before = _queue_waits(server.url)
    traffic = Traffic(server.url, server.token).start(clients=1)
    try:
        started = httpx.post(
            f"{server.url}/v1/endpoints/digits/rollout",
            json={"version": 3, "force": True},  # v3 failed its gates: forced, and audited
            headers=ADMIN,
        )
        assert started.status_code == 201, started.text
        rollout = wait_for_rollout(server.url, {"promoted", "rolled_back"})
        time.sleep(1.0)  # and after the rollback
    finally:
        traffic.finish()
    assert rollout["status"] == "rolled_back", rollout
    assert traffic.statuses and set(traffic.statuses) == {200}, "no request answered 5xx"
    fast, total = _queue_waits(server.url)
    waited = total - total_before
    assert waited >= 40, "the client sent too little to judge"
    assert fast - fast_before == waited, f"{waited - (fast - fast_before):.0f} waited > 100 ms"


def test_a_shadow_gets_a_copy_of_traffic_but_never_answers(
    server: Server, versions: Versions
) -> None:
    traffic = Traffic(server.url, server.token).start()
    try:
        started = httpx.post(
            f"{server.url}/v1/endpoints/digits/rollout",
            json={"version": 1, "mode": "shadow", "interval": "3s"},
            headers=ADMIN,
        )
        assert started.status_code == 201, started.text
        assert started.json()["steps"][0] == 0
        time.sleep(2.0)
        during = httpx.get(f"{server.url}/v1/endpoints/digits").json()
        answered = len(traffic.versions)
        abort = dnnops(versions, "rollout", "abort", "digits")
        assert abort.returncode == 0, abort.stderr
    finally:
        traffic.finish()
    assert during["shadow_version"] == "1"
    assert during["versions"]["1"]["weight"] == 0
    assert set(traffic.versions[:answered]) == {"2"}, "a shadow answered a client"
    logs = dnnops(versions, "logs", "show", "--jsonl", "--limit", "100000")
    records = [json.loads(line) for line in logs.stdout.splitlines() if line]
    mirrored = [r for r in records if r.get("shadow")]
    assert mirrored, "the shadow logged nothing"
    assert {r["version"] for r in mirrored} == {"1"}
    assert {r["shadow_of"] for r in mirrored} <= set(traffic.ids)


def test_an_operator_rollback_puts_the_replaced_version_back(
    server: Server, versions: Versions
) -> None:
    response = httpx.post(
        f"{server.url}/v1/endpoints/digits/rollback",
        json={"reason": "customers complain"},
        headers=ADMIN,
    )
    assert response.status_code == 200, response.text
    assert response.json()["live"] == "1"
    answered = httpx.post(
        f"{server.url}/v2/models/digits/infer",
        json={
            "inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [0] * 64}]
        },
    )
    assert answered.headers["x-model-version"] == "1"
    assert aliases(versions)["production"] == 1
    with sqlite3.connect(versions.home / "dnnops.db") as db:
        (state,) = db.execute("select status from model_versions where version = 2").fetchone()
    assert state == "rolled_back"
    again = httpx.post(f"{server.url}/v1/endpoints/digits/rollback", headers=ADMIN)
    assert again.status_code == 409, "nothing left to undo"


def test_blue_green_moves_all_traffic_then_promotes_after_its_verification_window(
    server: Server, versions: Versions
) -> None:
    traffic = Traffic(server.url, server.token).start()
    try:
        time.sleep(1.5)  # the stable version's window before the switch, to compare with
        started = httpx.post(
            f"{server.url}/v1/endpoints/digits/rollout",
            json={"version": 2, "mode": "blue_green"},
            headers=ADMIN,
        )
        assert started.status_code == 201, started.text
        assert started.json()["steps"] == [100]
        time.sleep(0.8)
        switched = len(traffic.versions)
        rollout = wait_for_rollout(server.url, {"promoted", "rolled_back"})
        time.sleep(0.5)
    finally:
        traffic.finish()
    assert rollout["status"] == "promoted", rollout
    assert set(traffic.versions[switched:]) == {"2"}, "blue-green sends every request over"
    assert set(traffic.statuses) == {200}
    assert aliases(versions)["production"] == 2


def test_a_restart_resumes_the_rollout_where_it_was(server: Server, versions: Versions) -> None:
    started = dnnops(
        versions, "rollout", "start", "digits@1", "--steps", "40,100", "--interval", "1h"
    )
    assert started.returncode == 0, started.stderr
    rollout = wait_for_rollout(server.url, {"running"})
    assert rollout["weight"] == 40
    code, _ = server.stop(signal.SIGTERM)
    assert code == 0
    again = start_server(versions.home, "-c", str(versions.config))
    try:
        endpoint = httpx.get(f"{again.url}/v1/endpoints/digits").json()
        assert endpoint["rollout"]["id"] == rollout["id"]
        assert endpoint["canary_version"] == "1"
        assert endpoint["versions"]["1"]["weight"] == 40
        traffic = Traffic(again.url, again.token).start()
        time.sleep(2.0)
        aborted = dnnops(versions, "rollout", "abort", "digits")
        assert aborted.returncode == 0, aborted.stderr
        wait_until = time.monotonic() + 10
        while httpx.get(f"{again.url}/v1/endpoints/digits").json()["canary_version"] is not None:
            assert time.monotonic() < wait_until, "the abort never reached the server"
            time.sleep(0.1)
        after = len(traffic.versions)
        time.sleep(1.0)
        traffic.finish()
        assert "1" in traffic.versions[:after], "the resumed canary took no traffic"
        assert set(traffic.versions[after + 8 :]) == {"2"}
    finally:
        again.stop()


def test_a_canary_as_accurate_but_worse_for_business_is_rolled_back_on_its_kpi(
    built_folders: BuiltFolders, tmp_path: Path
) -> None:
    """Beside the others, so the versions are built once for the module's worker."""
    check_kpi_gate(copy_versions(built_folders, tmp_path / "p"), tmp_path)


def test_a_replay_passes_a_good_candidate_refuses_a_broken_one_and_gates_the_rollout(
    built_folders: BuiltFolders, tmp_path: Path
) -> None:
    check_replay(copy_versions(built_folders, tmp_path / "p"), tmp_path)
