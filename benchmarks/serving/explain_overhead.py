"""What explaining a sample of live predictions costs the server (issue 17, item 2).

Trains the built-in digits MLP, then serves it twice as a user would (prediction log and
metrics on): once with ``monitor.explain.sample: 0`` and once with ``0.01`` (one in a
hundred answered predictions explained in the side process by Integrated Gradients and
stored). Each run holds the same paced load with ``wrk`` (16 connections at ``--rate``
requests/s, a single-instance body, as the serving benchmark's) for ``--seconds``, and
reads the CPU time of the server's whole process tree (workers and the side process) per
request. The two settings alternate ``--rounds`` times; medians and their ratio.

    .venv/bin/python benchmarks/serving/explain_overhead.py [--rate 800] [--seconds 30]

Target: at a 1% sample, at most 5% more server CPU per request. Needs ``wrk``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sklearn.datasets import load_digits

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from run import cpu_seconds, free_port, run_wrk, wait_until_ready

from soak import paced_script

BIN = Path(sys.executable).parent
PROJECT = """name: digits
data: {source: "builtin:digits", preprocessing: {numeric: scale}}
model: {arch: mlp, params: {hidden: [64], dropout: 0.0}}
train: {epochs: 5, lr: 0.005, seed: 1}
monitor: {explain: {sample: %s, every: 5s, max_per_minute: 100000}}
"""
CONNECTIONS = 16
TARGET = 0.05


def one_run(folder: Path, sample: float, rate: float, seconds: float) -> tuple[float, int]:
    """(server CPU ms per request, explanations stored) at ``sample``."""
    config = folder / f"serve-{sample}.yaml"
    config.write_text(PROJECT % sample)
    body = folder / "body.json"
    body.write_text(json.dumps({"instances": [load_digits().data[0].tolist()]}))
    port = free_port()
    env = {**os.environ, "DNNOPS_HOME": str(folder / "home")}
    server = subprocess.Popen(
        [str(BIN / "dnnops"), "serve", "-c", str(config), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(f"{url}/v2/health/ready", server)
        script = paced_script(folder, body, 1000.0 * CONNECTIONS / rate)
        predict = f"{url}/v1/models/digits:predict"
        run_wrk(predict, script, CONNECTIONS, 5, server.pid)  # warm-up (the side process too)
        time.sleep(6)
        before = cpu_seconds(server.pid)
        figures = run_wrk(predict, script, CONNECTIONS, seconds, server.pid)
        time.sleep(6)  # the sampler's last pass over this load
        used = cpu_seconds(server.pid) - before
        requests = figures["rps"] * seconds
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
        stored = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith('dnnops_explanations_total{outcome="stored"}')
        )
        return 1000.0 * used / requests, int(stored)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=800.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "dnnops.yaml").write_text(PROJECT % 0.0)
        subprocess.run(
            [str(BIN / "dnnops"), "train", "-c", str(folder / "dnnops.yaml"), "--quiet"],
            env={**os.environ, "DNNOPS_HOME": str(folder / "home")},
            check=True,
            capture_output=True,
        )
        runs: dict[float, list[tuple[float, int]]] = {0.0: [], 0.01: []}
        for _ in range(args.rounds):
            for sample in runs:
                runs[sample].append(one_run(folder, sample, args.rate, args.seconds))
    print(f"\n{args.rate:g} req/s for {args.seconds:g} s, median of {args.rounds}")
    print(f"{'explain.sample':>15} {'CPU ms/request':>15} {'explanations':>13}  runs (ms)")
    medians = {}
    for sample, measured in runs.items():
        medians[sample] = statistics.median(m[0] for m in measured)
        stored = statistics.median(m[1] for m in measured)
        listed = ", ".join(f"{m[0]:.3f}" for m in measured)
        print(f"{sample:>15g} {medians[sample]:>15.3f} {stored:>13.0f}  {listed}")
    extra = medians[0.01] / medians[0.0] - 1.0
    verdict = "met" if extra <= TARGET else "MISSED"
    print(f"extra server CPU at a 1% sample: {extra:+.1%} (target <= {TARGET:.0%}): {verdict}")


if __name__ == "__main__":
    main()
