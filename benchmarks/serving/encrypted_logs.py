"""What sealing the prediction log costs the server (issue 32, item 3): the same server,
once with clear log records and once with each record sealed by AES-256-GCM
(``DNNOPS_ENCRYPTION_KEY_FILE``), under the same wrk load (a single-instance v2 body,
``--concurrency`` connections, ``--seconds`` each). The two alternate ``--rounds`` times
on one machine; the table gives each run's rate and the server's CPU time per request,
then the medians and their ratio.

    .venv/bin/python benchmarks/serving/encrypted_logs.py [--rounds 5] [--seconds 10]

Target: encrypted throughput within 5% of clear (ratio >= 0.95). Needs ``wrk``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadtest_agreement import v2_body
from run import free_port, make_weights, register, run_wrk, start_server

from dnnops.encryption import KEY_FILE_ENV

TARGET = 0.95


def one_run(
    folder: Path, home: Path, key: Path | None, *, concurrency: int, seconds: float
) -> dict[str, float]:
    if key is None:
        os.environ.pop(KEY_FILE_ENV, None)
    else:
        os.environ[KEY_FILE_ENV] = str(key)
    _, script = v2_body(folder)
    port = free_port()
    process, _ = start_server("dnnops", "small", folder / "small.safetensors", home, port)
    infer = f"http://127.0.0.1:{port}/v2/models/small/infer"
    try:
        run_wrk(infer, script, 16, 1.0, process.pid)  # warm-up
        found = run_wrk(infer, script, concurrency, seconds, process.pid)
        requests = found["rps"] * seconds
        return {**found, "server_cpu_ms_per_req": 1000 * found["server_cpu_s"] / requests}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        os.environ.pop(KEY_FILE_ENV, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    results: dict[str, list[dict[str, float]]] = {"clear": [], "sealed": []}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        home = folder / "home"
        register(home, "small", make_weights(folder, "small"))  # artifacts clear in both
        key = folder / "kek"
        key.write_bytes(os.urandom(32))
        print("| round | logs | req/s | server CPU ms / request | p99 ms |")
        print("| --- | --- | --- | --- | --- |")
        for round_ in range(args.rounds):
            for name, used in (("clear", None), ("sealed", key)):
                found = one_run(
                    folder, home, used, concurrency=args.concurrency, seconds=args.seconds
                )
                results[name].append(found)
                print(
                    f"| {round_ + 1} | {name} | {found['rps']:.0f} "
                    f"| {found['server_cpu_ms_per_req']:.3f} | {found['p99_ms']:.1f} |",
                    flush=True,
                )
    clear = statistics.median(r["rps"] for r in results["clear"])
    sealed = statistics.median(r["rps"] for r in results["sealed"])
    clear_cpu = statistics.median(r["server_cpu_ms_per_req"] for r in results["clear"])
    sealed_cpu = statistics.median(r["server_cpu_ms_per_req"] for r in results["sealed"])
    ratio = sealed / clear
    print(
        f"\nmedians: clear {clear:.0f} req/s ({clear_cpu:.3f} CPU ms/req), sealed {sealed:.0f} "
        f"req/s ({sealed_cpu:.3f} CPU ms/req); throughput ratio {ratio:.3f}, CPU per request "
        f"{sealed_cpu / clear_cpu:.3f}x; target ratio >= {TARGET}: "
        f"{'met' if ratio >= TARGET else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
