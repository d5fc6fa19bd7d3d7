"""A fleet on one machine: three ``dnnops serve`` replicas with their own homes and ports,
one PostgreSQL and one S3 server (moto) for artifacts and the fleet's log. One leader at a
time holds the fleet's lease; a canary started through any replica is decided once, on
the whole fleet's traffic (the leader itself answers none of it); the leader killed with
SIGKILL is replaced within twice the lease, and nothing is decided twice; an admin load
through one replica reaches the others; a replica killed and restarted ships what it had,
so every acknowledged prediction is in the fleet's log and the report of any replica
counts the same traffic."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import select

from dnnops.predlog.reader import PREDICTIONS, read_predictions
from dnnops.registry.db import open_engine
from dnnops.registry.tables import AuditRow
from tests.rollout.conftest import ROLLOUT, Traffic
from tests.s3 import BUCKET
from tests.serve.conftest import Server, start_server, train_digits

LEASE_S = 2.0
ADMIN = {"Authorization": "Bearer t"}


def leader_flag(server: Server) -> float | None:
    """The replica's ``dnnops_leader`` gauge; None when it does not answer (killed)."""
    try:
        text = httpx.get(f"{server.url}/metrics", timeout=5).text
    except httpx.HTTPError:
        return None
    found = re.search(r"^dnnops_leader (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def leaders(replicas: list[Server]) -> list[Server]:
    return [r for r in replicas if leader_flag(r) == 1.0]


def one_leader(replicas: list[Server], within_s: float) -> tuple[Server, float]:
    """The only replica that leads, once exactly one does, and how long that took."""
    started = time.monotonic()
    while True:
        leading = leaders(replicas)
        if len(leading) == 1:
            return leading[0], time.monotonic() - started
        assert time.monotonic() - started < within_s, f"{len(leading)} leaders"
        time.sleep(0.1)


def served_version(replica: Server) -> str:
    answered = httpx.post(
        f"{replica.url}/v1/models/digits:predict", json={"instances": [[0.0] * 64]}, timeout=30
    )
    return str(answered.headers["x-model-version"])


def fleet_report(replica: Server) -> dict[str, int]:
    """Predictions per version in the replica's report of the last hour."""
    report = httpx.get(f"{replica.url}/v1/monitor/digits?since=1h", headers=ADMIN, timeout=60)
    assert report.status_code == 200, report.text
    return {v["slis"]["version"]: v["slis"]["predictions"] for v in report.json()["versions"]}


def logged(home: Path) -> dict[str, str]:
    """Every answered prediction in a replica's log (its own segments and its siblings'
    pulled): the replica each record names, by prediction id."""
    records = read_predictions(home / "logs" / PREDICTIONS)
    return {str(r.id): r.replica for r in records if r.answered}


def promotions(db_url: str) -> list[str]:
    with open_engine(db_url).connect() as connection:
        rows = connection.execute(select(AuditRow.details).where(AuditRow.action == "alias"))
        return [
            str(details["reason"])
            for (raw,) in rows
            if (details := raw if isinstance(raw, dict) else json.loads(raw)).get("alias")
            == "production"
            and "promoted" in str(details.get("reason", ""))
        ]


# Slow (55-80 s here) by what it tests: three server processes on one PostgreSQL and one
# object store elect a leader, walk a canary, and outlive the leader's SIGKILL; each step
# waits on real leases and controller ticks. Every other fleet test shares its setup.
@pytest.mark.slow
def test_three_replicas_decide_a_canary_once_and_outlive_their_leader(tmp_path: Path) -> None:
    from tests.postgres import create_database, postgres_server
    from tests.s3 import s3_server

    with postgres_server() as postgres, s3_server() as s3:
        db_url = create_database(postgres, "fleet")
        env = {
            **s3.env,
            "DNNOPS_DB_URL": db_url,
            "DNNOPS_ARTIFACTS_URL": f"s3://{BUCKET}/artifacts",
            "DNNOPS_LOGS_URL": f"s3://{BUCKET}/fleet-logs",
            "DNNOPS_ADMIN_TOKEN": "t",
        }
        train_digits(tmp_path, tmp_path / "trainer", env=env, seed=1)  # v1, production
        train_digits(tmp_path, tmp_path / "trainer", env=env, seed=2)  # v2, as good
        config = tmp_path / "fleet.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "name": "digits",
                    "data": {"source": "builtin:digits"},
                    "rollout": {**ROLLOUT, "steps": [50, 100]},
                    "serve": {"lease": f"{LEASE_S}s"},
                    "logs": {"ship_every": "1s"},
                }
            )
        )
        homes = [tmp_path / f"replica-{i}" for i in range(3)]
        replicas = [
            start_server(home, "-c", str(config), env={**env, "DNNOPS_REPLICA": home.name})
            for home in homes
        ]
        traffic = [Traffic(r.url, "t") for r in replicas]
        try:
            leader, _ = one_leader(replicas, within_s=30)
            followers = [r for r in replicas if r is not leader]
            for follower in followers:  # the leader answers nothing: it judges shipped traffic
                traffic[replicas.index(follower)].start(clients=1)
            started = httpx.post(
                f"{followers[0].url}/v1/endpoints/digits/rollout",
                json={"version": 2},
                headers=ADMIN,
            )
            assert started.status_code == 201, started.text
            deadline = time.monotonic() + 150
            while True:
                rollout = httpx.get(f"{followers[0].url}/v1/endpoints/digits", timeout=10).json()
                status = (rollout["rollout"] or {}).get("status")
                if status == "promoted":
                    break
                assert status == "running", rollout["rollout"]
                assert time.monotonic() < deadline, rollout["rollout"]
                time.sleep(0.5)
            assert len(promotions(db_url)) == 1, promotions(db_url)

            leader.process.send_signal(signal.SIGKILL)
            leader.process.wait(timeout=30)
            _, took = one_leader(followers, within_s=4 * LEASE_S)
            assert took <= 2 * LEASE_S, f"a new leader after {took:.1f} s"
            time.sleep(2 * LEASE_S)  # the new leader's ticks: nothing left to decide
            assert len(promotions(db_url)) == 1, promotions(db_url)
            assert {served_version(r) for r in followers} == {"2"}, "all follow the promotion"
            loaded = httpx.post(  # an admin load through one replica reaches the others
                f"{followers[0].url}/v1/endpoints/digits/versions",
                json={"version": 1},
                headers=ADMIN,
                timeout=60,
            )
            assert loaded.status_code == 200, loaded.text
            deadline = time.monotonic() + 20
            while served_version(followers[1]) != "1":
                assert time.monotonic() < deadline, "the other replica never loaded version 1"
                time.sleep(0.3)

            # a replica killed with records it had not shipped yet, then restarted
            killed = followers[1]
            traffic[replicas.index(killed)].finish()
            killed.process.send_signal(signal.SIGKILL)
            killed.process.wait(timeout=30)
            restarted = start_server(
                homes[replicas.index(killed)],
                "-c",
                str(config),
                env={**env, "DNNOPS_REPLICA": homes[replicas.index(killed)].name},
            )
            replicas.append(restarted)
            for flow in traffic:
                flow.finish()
            acknowledged = {i for flow in traffic for i in flow.ids}
            assert acknowledged, "no traffic was answered"
            watcher, watcher_home = followers[0], homes[replicas.index(followers[0])]
            deadline = time.monotonic() + 30
            while True:  # shipped every second, pulled every second
                in_log = logged(watcher_home)
                missing = acknowledged - set(in_log)
                seen = [fleet_report(watcher), fleet_report(restarted)]
                if not missing and seen[0] == seen[1]:
                    break
                assert time.monotonic() < deadline, (len(missing), seen)
                time.sleep(0.5)
            assert sum(seen[0].values()) >= len(acknowledged)
            answered_by = {in_log[i] for i in acknowledged}  # each record names its replica
            assert answered_by == {homes[replicas.index(f)].name for f in followers}
        finally:
            for flow in traffic:
                flow.finish()
            stopped = [r.stop() for r in replicas]
    assert all(set(flow.statuses) <= {200} for flow in traffic), "a request failed"
    for replica, (code, output) in zip(replicas, stopped, strict=True):
        assert replica in (leader, killed) or code == 0, output
