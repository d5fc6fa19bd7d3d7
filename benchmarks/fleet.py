"""A fleet on this machine (issue 16, item 8): one replica against two under the same load,
and how long the fleet goes without a leader when its leader dies.

Every replica is its own ``dnnops serve`` process with its own home, as on separate hosts,
sharing one PostgreSQL (started here, see tests/postgres.py), one artifact folder and one
fleet log (``DNNOPS_LOGS_URL``, a local folder through fsspec, shipped every second).

- **Throughput.** ``wrk`` with 16 connections for 10 s against one replica, then against
  two with 8 connections each at the same time (what a load balancer splitting evenly
  does); requests/s summed, P99 the worse of the two. One and two alternate ``--rounds``
  times so the machine's noise hits both alike; medians.
- **Failover.** Two replicas with ``serve.lease`` L; the leader (``dnnops_leader`` 1 on
  ``/metrics``) is killed with SIGKILL and the other polled every 50 ms until it says 1.
  Repeated ``--kills`` times per lease; median and worst, against the lease.

    .venv/bin/python benchmarks/fleet.py [--rounds 3] [--kills 5] [--leases 2,10]

Needs ``wrk`` (apt-get install wrk) and PostgreSQL (apt-get install postgresql).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml
from sklearn.datasets import load_digits

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks" / "serving")]

from run import free_port, run_wrk, wait_until_ready  # noqa: E402
from tests.postgres import create_database, postgres_server  # noqa: E402

DNNOPS = str(REPO / ".venv/bin/dnnops")
CONNECTIONS = 16


@dataclass
class Replica:
    process: subprocess.Popen[bytes]
    url: str

    def leads(self) -> bool:
        try:
            text = httpx.get(f"{self.url}/metrics", timeout=2).text
        except httpx.HTTPError:
            return False
        return re.search(r"^dnnops_leader 1\.0$", text, re.MULTILINE) is not None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


class Fleet:
    """Replicas on one database, artifact folder and fleet log."""

    def __init__(self, folder: Path, db_url: str) -> None:
        self.folder = folder
        self.env = {
            **os.environ,
            "DNNOPS_DB_URL": db_url,
            "DNNOPS_ARTIFACTS_URL": str(folder / "artifacts"),
            "DNNOPS_LOGS_URL": f"file://{folder / 'fleet-logs'}",
        }
        self.started = 0

    def train(self) -> None:
        config = self.folder / "train.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "name": "digits",
                    "data": {"source": "builtin:digits", "preprocessing": {"numeric": "scale"}},
                    "model": {"arch": "mlp", "params": {"hidden": [64], "dropout": 0.0}},
                    "train": {"epochs": 5, "lr": 0.005, "seed": 1},
                }
            )
        )
        subprocess.run(
            [DNNOPS, "train", "-c", str(config), "--quiet"],
            env={**self.env, "DNNOPS_HOME": str(self.folder / "trainer")},
            check=True,
            capture_output=True,
        )

    def start(self, lease_s: float) -> Replica:
        self.started += 1
        name = f"replica-{self.started}"
        config = self.folder / f"{name}.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "name": "digits",
                    "data": {"source": "builtin:digits"},
                    "serve": {"lease": f"{lease_s}s"},
                    "logs": {"ship_every": "1s"},
                }
            )
        )
        port = free_port()
        env = {**self.env, "DNNOPS_HOME": str(self.folder / name), "DNNOPS_REPLICA": name}
        process = subprocess.Popen(
            [DNNOPS, "serve", "-c", str(config), "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(f"{url}/v2/health/ready", process)
        return Replica(process, url)

    @contextmanager
    def replicas(self, count: int, lease_s: float) -> Iterator[list[Replica]]:
        started = [self.start(lease_s) for _ in range(count)]
        try:
            yield started
        finally:
            for replica in started:
                replica.stop()


def post_script(folder: Path) -> Path:
    body = folder / "body.json"
    body.write_text(json.dumps({"instances": [load_digits().data[0].astype(float).tolist()]}))
    script = folder / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f'local f = io.open("{body}", "r")\nwrk.body = f:read("*all")\nf:close()\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return script


def load(replicas: list[Replica], script: Path, seconds: float) -> tuple[float, float, float]:
    """Requests/s (summed), the worst P99 (ms) and non-2xx answers with the connections
    split evenly over ``replicas``, every wrk at once."""
    each = CONNECTIONS // len(replicas)
    with ThreadPoolExecutor(len(replicas)) as pool:
        runs = [
            pool.submit(
                run_wrk, f"{r.url}/v1/models/digits:predict", script, each, seconds, r.process.pid
            )
            for r in replicas
        ]
        results = [run.result() for run in runs]
    return (
        sum(r["rps"] for r in results),
        max(r["p99_ms"] for r in results),
        sum(r["non_2xx"] for r in results),
    )


def throughput(fleet: Fleet, script: Path, rounds: int) -> dict[int, list[tuple[float, ...]]]:
    measured: dict[int, list[tuple[float, ...]]] = {1: [], 2: []}
    for _ in range(rounds):
        for count in (1, 2):
            with fleet.replicas(count, lease_s=10.0) as replicas:
                load(replicas, script, 3)  # warm-up
                measured[count].append(load(replicas, script, 10))
    return measured


def failover(fleet: Fleet, lease_s: float, kills: int) -> list[float]:
    """Seconds from the leader's SIGKILL to the survivor leading, ``kills`` times."""
    took = []
    for _ in range(kills):
        with fleet.replicas(2, lease_s) as replicas:
            deadline = time.monotonic() + 10 * lease_s + 30
            leading = [r for r in replicas if r.leads()]
            while len(leading) != 1:
                assert time.monotonic() < deadline, f"{len(leading)} leaders"
                time.sleep(0.1)
                leading = [r for r in replicas if r.leads()]
            [leader] = leading
            [survivor] = [r for r in replicas if r is not leader]
            killed = time.monotonic()
            leader.stop(signal.SIGKILL)
            while not survivor.leads():
                assert time.monotonic() < deadline, "no new leader"
                time.sleep(0.05)
            took.append(time.monotonic() - killed)
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--leases", default="2,10", help="lease lengths in seconds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, postgres_server() as postgres:
        folder = Path(scratch)
        fleet = Fleet(folder, create_database(postgres, "fleet"))
        fleet.train()
        script = post_script(folder)
        measured = throughput(fleet, script, args.rounds)
        leases = [float(x) for x in args.leases.split(",")]
        failovers = {lease: failover(fleet, lease, args.kills) for lease in leases}
    cores = os.cpu_count()
    print(f"\nthroughput: {CONNECTIONS} connections, 10 s, median of {args.rounds}, {cores} cores")
    print(f"{'replicas':>8} {'req/s':>8} {'P99 ms':>8} {'non-2xx':>8}")
    medians = {}
    for count, runs in measured.items():
        medians[count] = [statistics.median(r[i] for r in runs) for i in range(3)]
        rps, p99, errors = medians[count]
        print(f"{count:>8} {rps:>8,.0f} {p99:>8.1f} {errors:>8.0f}")
    print(f"two replicas / one: {medians[2][0] / medians[1][0]:.2f}x the requests/s")
    print(f"\nfailover: the leader SIGKILLed, {args.kills} times per lease")
    print(f"{'lease s':>8} {'median s':>9} {'worst s':>8} {'runs':>24}")
    for lease, took in failovers.items():
        listed = ", ".join(f"{t:.1f}" for t in took)
        print(f"{lease:>8g} {statistics.median(took):>9.2f} {max(took):>8.2f}   {listed}")
        verdict = "met" if max(took) < 2 * lease else "MISSED"
        print(f"         within twice the lease ({2 * lease:g} s): {verdict}")


if __name__ == "__main__":
    main()
