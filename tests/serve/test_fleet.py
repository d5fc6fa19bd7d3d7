"""A fleet on one machine: three ``dnnops serve`` replicas with their own homes and ports,
one PostgreSQL and one artifact store. One leader at a time holds the fleet's lease; a
canary started through any replica is decided once; the leader killed with SIGKILL is
replaced within twice the lease, and nothing is decided twice; an admin load through one
replica reaches the others."""

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

from dnnops.registry.db import open_engine
from dnnops.registry.tables import AuditRow
from tests.rollout.conftest import ROLLOUT, Traffic
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


@pytest.mark.slow
def test_three_replicas_decide_a_canary_once_and_outlive_their_leader(tmp_path: Path) -> None:
    from tests.postgres import create_database, postgres_server

    with postgres_server() as postgres:
        db_url = create_database(postgres, "fleet")
        env = {
            "DNNOPS_DB_URL": db_url,
            "DNNOPS_ARTIFACTS_URL": str(tmp_path / "shared-artifacts"),
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
                }
            )
        )
        replicas = [
            start_server(tmp_path / f"replica-{i}", "-c", str(config), env=env) for i in range(3)
        ]
        traffic = [Traffic(r.url, "t").start(clients=1) for r in replicas]
        try:
            leader, _ = one_leader(replicas, within_s=30)
            follower = next(r for r in replicas if r is not leader)
            started = httpx.post(
                f"{follower.url}/v1/endpoints/digits/rollout", json={"version": 2}, headers=ADMIN
            )
            assert started.status_code == 201, started.text
            deadline = time.monotonic() + 150
            while True:
                rollout = httpx.get(f"{follower.url}/v1/endpoints/digits", timeout=10).json()
                status = (rollout["rollout"] or {}).get("status")
                if status == "promoted":
                    break
                assert status == "running", rollout["rollout"]
                assert time.monotonic() < deadline, rollout["rollout"]
                time.sleep(0.5)
            assert len(promotions(db_url)) == 1, promotions(db_url)

            traffic[replicas.index(leader)].finish()  # its client would only see resets
            leader.process.send_signal(signal.SIGKILL)
            leader.process.wait(timeout=30)
            survivors = [r for r in replicas if r is not leader]
            _, took = one_leader(survivors, within_s=4 * LEASE_S)
            assert took <= 2 * LEASE_S, f"a new leader after {took:.1f} s"
            time.sleep(2 * LEASE_S)  # the new leader's ticks: nothing left to decide
            assert len(promotions(db_url)) == 1, promotions(db_url)
            assert {served_version(r) for r in survivors} == {"2"}, "all follow the promotion"
            loaded = httpx.post(  # an admin load through one replica reaches the others
                f"{survivors[0].url}/v1/endpoints/digits/versions",
                json={"version": 1},
                headers=ADMIN,
                timeout=60,
            )
            assert loaded.status_code == 200, loaded.text
            deadline = time.monotonic() + 20
            while served_version(survivors[1]) != "1":
                assert time.monotonic() < deadline, "the other replica never loaded version 1"
                time.sleep(0.3)
        finally:
            for flow in traffic:
                flow.finish()
            stopped = [r.stop() for r in replicas]
    assert all(set(flow.statuses) <= {200} for flow in traffic), "a request failed"
    for replica, (code, output) in zip(replicas, stopped, strict=True):
        assert replica is leader or code == 0, output
