"""A rollout on ``dnnops serve --workers 2``: every worker routes the canary, one worker (the
leader) judges the steps and promotes once, and afterwards every worker answers with the
promoted version."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import BuiltFolders
from tests.rollout.conftest import Traffic, copy_versions
from tests.serve.conftest import start_server
from tests.serve.test_workers import predict_many, workers_of

ADMIN = {"Authorization": "Bearer s3cret"}


@pytest.fixture(scope="module")
def two_good_versions(
    tmp_path_factory: pytest.TempPathFactory, built_folders: BuiltFolders
) -> tuple[Path, Path]:
    """v1 in production and v2 as good (v3, the broken one, is there but not used)."""
    versions = copy_versions(built_folders, tmp_path_factory.mktemp("rollout-workers") / "p")
    return versions.home, versions.config


def promotions(home: Path) -> list[str]:
    with sqlite3.connect(home / "dnnops.db") as db:
        rows = db.execute("select details from audit_log where action = 'alias'").fetchall()
    return [
        str(details["reason"])
        for (raw,) in rows
        if (details := json.loads(raw)).get("alias") == "production"
        and "promoted" in str(details.get("reason", ""))
    ]


def test_two_workers_roll_out_a_canary_and_promote_it_once(
    two_good_versions: tuple[Path, Path],
) -> None:
    home, config = two_good_versions
    server = start_server(
        home, "-c", str(config), "--workers", "2", env={"DNNOPS_ADMIN_TOKEN": "s3cret"}
    )
    try:
        assert len(workers_of(server)) == 2
        traffic = Traffic(server.url, server.token).start(clients=4)
        try:
            started = httpx.post(
                f"{server.url}/v1/endpoints/digits/rollout", json={"version": 2}, headers=ADMIN
            )
            assert started.status_code == 201, started.text
            deadline = time.monotonic() + 120
            while True:
                rollout = httpx.get(f"{server.url}/v1/endpoints/digits", timeout=10).json()
                if rollout["rollout"] and rollout["rollout"]["status"] == "promoted":
                    break
                ended = rollout["rollout"] and rollout["rollout"]["status"] != "running"
                assert not ended, rollout["rollout"]  # the last check's gates say why
                assert time.monotonic() < deadline, rollout["rollout"]
                time.sleep(0.3)
        finally:
            traffic.finish()
        assert set(traffic.statuses) == {200}
        assert {"1", "2"} <= set(traffic.versions)
        assert len(promotions(home)) == 1, promotions(home)
        deadline = time.monotonic() + 30
        while {r.headers["x-model-version"] for r in predict_many(server.url, 24)} != {"2"}:
            assert time.monotonic() < deadline, "a worker still answers with version 1"
            time.sleep(0.3)
    finally:
        code, err = server.stop()
    assert code == 0, err
