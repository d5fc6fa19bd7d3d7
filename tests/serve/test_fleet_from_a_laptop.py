"""The fleet from a laptop: with ``DNNOPS_LOGS_URL`` naming the fleet's store, the reading
commands on a host that runs no replica (monitor report, labels queue, logs show) pull
every replica's shipped segments first and see the whole fleet's traffic; what they
pulled is kept, so the next command fetches only what is new. Without it, the same
host sees nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
from sklearn.datasets import load_digits

from tests.conftest import subprocess_env
from tests.s3 import BUCKET, s3_server
from tests.serve.conftest import start_server


def test_a_laptop_reads_the_whole_fleets_log_from_the_store(
    trained_home: Path, tmp_path: Path
) -> None:
    server_home = tmp_path / "replica"
    shutil.copytree(trained_home, server_home)
    laptop_home = tmp_path / "laptop"
    rows = load_digits().data[:40]
    with s3_server() as s3:
        logs_url = f"s3://{BUCKET}/fleet-logs"
        replica_env = {**s3.env, "DNNOPS_LOGS_URL": logs_url, "DNNOPS_REPLICA": "r1"}
        server = start_server(server_home, "--model", "digits@production", env=replica_env)
        try:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                for start in range(0, len(rows), 10):
                    chunk = rows[start : start + 10].tolist()
                    reply = http.post("/v1/models/digits:predict", json={"instances": chunk})
                    assert reply.status_code == 200, reply.text
        finally:
            server.stop()  # a draining replica ships what it has
        shared = {
            **s3.env,
            "DNNOPS_DB_URL": f"sqlite:///{server_home / 'dnnops.db'}",
            "DNNOPS_ARTIFACTS_URL": str(server_home / "artifacts"),
            "DNNOPS_REPLICA": "laptop",
        }

        def dnnops(*args: str, fleet: bool = True) -> subprocess.CompletedProcess[str]:
            env = {**subprocess_env(laptop_home), **shared}
            if fleet:
                env["DNNOPS_LOGS_URL"] = logs_url
            done = subprocess.run(
                [sys.executable, "-m", "dnnops", *args], env=env,
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            return done

        alone = json.loads(
            dnnops("monitor", "report", "--since", "1h", "--json", fleet=False).stdout
        )
        assert alone["versions"] == [], "without the store, a laptop sees no traffic"
        first = dnnops("monitor", "report", "--since", "1h", "--json")
        [section] = json.loads(first.stdout)["versions"]
        assert section["slis"]["predictions"] == len(rows)
        assert "pulled" in first.stderr and "0 part(s)" not in first.stderr
        again = dnnops("monitor", "report", "--since", "1h", "--json")
        assert "pulled 0 part(s)" in again.stderr, "what was pulled is kept"
        assert json.loads(again.stdout)["versions"][0]["slis"]["predictions"] == len(rows)
        queue = json.loads(dnnops("labels", "queue", "digits", "--budget", "5", "--json").stdout)
        assert len(queue["items"]) == 5
        shown = dnnops("logs", "show", "--endpoint", "digits", "--jsonl", "--limit", "100")
        assert len(shown.stdout.splitlines()) == len(rows)
