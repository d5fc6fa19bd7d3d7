"""Does ``dnnops loadtest`` measure what wrk measures? Side by side on one server.

Registers the serving benchmark's small MLP (64 -> 256 -> 256 -> 10), serves it with
``dnnops serve``, then alternates wrk and ``dnnops loadtest`` (the same v2 body, the same
concurrency, the same duration) for a few rounds and prints each rate, the median of each
and their ratio. Target (issue 28): the ratio within 0.8-1.2.

    .venv/bin/python benchmarks/serving/loadtest_agreement.py [--rounds 3] [--duration 10]

Needs ``wrk`` (apt-get install wrk). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import (  # the serving benchmark's helpers
    BIN,
    free_port,
    make_weights,
    register,
    run_wrk,
    start_server,
)


def v2_body(folder: Path) -> tuple[Path, Path]:
    """One 64-float instance as an OIP v2 request, and wrk's script that posts it."""
    values = np.random.default_rng(1).normal(size=64).round(4).tolist()
    body = {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": values}]}
    path = folder / "v2.json"
    path.write_text(json.dumps(body))
    script = folder / "v2.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f'local f = io.open("{path}", "r")\nwrk.body = f:read("*all")\nf:close()\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return path, script


def run_loadtest(
    url: str, body: Path, *, concurrency: int, seconds: float, processes: int
) -> dict[str, float]:
    out = subprocess.run(
        [
            str(BIN / "dnnops"), "loadtest", url, "--model", "small", "--body", str(body),
            "--concurrency", str(concurrency), "--duration", str(seconds),
            "--processes", str(processes), "--json",
        ],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return json.loads(out)  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        home = folder / "home"
        register(home, "small", make_weights(folder, "small"))
        body, script = v2_body(folder)
        port = free_port()
        process, _ = start_server("dnnops", "small", folder / "small.safetensors", home, port)
        base = f"http://127.0.0.1:{port}"
        infer = f"{base}/v2/models/small/infer"
        wrk_rates, ours, cpu = [], [], []
        try:
            run_wrk(infer, script, 16, 1.0, process.pid)  # warm-up
            for round_ in range(args.rounds):
                wrk = run_wrk(infer, script, args.concurrency, args.duration, process.pid)
                mine = run_loadtest(
                    base, body, concurrency=args.concurrency, seconds=args.duration,
                    processes=args.processes,
                )  # fmt: skip
                wrk_rates.append(wrk["rps"])
                ours.append(mine["requests_per_s"])
                cpu.append(mine["client_cpu_share"])
                print(
                    f"round {round_ + 1}: wrk {wrk['rps']:8.0f} req/s (p99 {wrk['p99_ms']:.1f} ms)"
                    f"   dnnops loadtest {mine['requests_per_s']:8.0f} req/s "
                    f"(p99 {mine['p99_ms']:.1f} ms, client {mine['client_cpu_share']:.0%} "
                    f"of a core per process, errors {mine['errors'] or 0})",
                    flush=True,
                )
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
    a, b = statistics.median(wrk_rates), statistics.median(ours)
    print(
        f"\nmedian over {args.rounds} rounds at {args.concurrency} connections: wrk {a:.0f} req/s, "
        f"dnnops loadtest {b:.0f} req/s ({args.processes} process(es)); ratio {b / a:.3f} "
        f"(target 0.8-1.2); client busy {statistics.median(cpu):.0%} of a core"
    )


if __name__ == "__main__":
    main()
