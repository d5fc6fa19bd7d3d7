"""gRPC against HTTP/JSON and HTTP/binary on the large MLP (784 -> 2048 -> 2048 -> 10),
one dnnops server answering all three (issue 32, item 4: gRPC at least as fast as binary
HTTP).

Each protocol is driven by Triton's own Python clients (``tritonclient.http`` with and
without binary tensors, ``tritonclient.grpc``), ``--clients`` processes of ``--threads``
threads each sending one 784-float instance per request for ``--seconds``. The three
alternate ``--rounds`` times; the table gives each run's requests/s and the server's CPU
time per request, then the medians and the gRPC / binary HTTP ratio. On this 2-core
machine the clients share the cores with the server: the CPU per request is the fairer
number.

    .venv/bin/python benchmarks/serving/grpc_vs_http.py [--rounds 3] [--seconds 8]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import BIN, cpu_seconds, free_port, make_weights, register, wait_until_ready

PROTOCOLS = ("http-json", "http-binary", "grpc")


def client_process(protocol: str, url: str, threads: int, seconds: float, out: Any) -> None:
    """Send requests from ``threads`` threads until ``seconds`` pass; put the count."""
    row = np.random.default_rng(0).normal(size=(1, 784)).astype("float32")
    done = [0] * threads
    stop = time.monotonic() + seconds

    def work(index: int) -> None:
        if protocol == "grpc":
            import tritonclient.grpc as client_lib
        else:
            import tritonclient.http as client_lib  # type: ignore[no-redef]
        client = client_lib.InferenceServerClient(url=url)
        tensor = client_lib.InferInput("input", [1, 784], "FP32")
        if protocol == "http-json":
            tensor.set_data_from_numpy(row, binary_data=False)
        else:
            tensor.set_data_from_numpy(row)
        while time.monotonic() < stop:
            client.infer("large", [tensor])
            done[index] += 1

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    out.put(sum(done))


def one_run(
    protocol: str,
    urls: dict[str, str],
    server_pid: int,
    *,
    clients: int,
    threads: int,
    seconds: float,
) -> dict[str, float]:
    url = urls["grpc"] if protocol == "grpc" else urls["http"]
    queue: Any = multiprocessing.Queue()
    before = cpu_seconds(server_pid)
    started = time.monotonic()
    processes = [
        multiprocessing.Process(
            target=client_process, args=(protocol, url, threads, seconds, queue)
        )
        for _ in range(clients)
    ]
    for process in processes:
        process.start()
    total = sum(queue.get() for _ in processes)
    for process in processes:
        process.join()
    elapsed = time.monotonic() - started
    cpu = cpu_seconds(server_pid) - before
    return {"rps": total / elapsed, "cpu_ms": 1000 * cpu / max(total, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {p: [] for p in PROTOCOLS}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        home = folder / "home"
        register(home, "large", make_weights(folder, "large"))
        port, grpc_port = free_port(), free_port()
        server = subprocess.Popen(
            [str(BIN / "dnnops"), "serve", "--model", "large@1", "--port", str(port),
             "--grpc-port", str(grpc_port)],
            env={**os.environ, "DNNOPS_HOME": str(home)},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        urls = {"http": f"127.0.0.1:{port}", "grpc": f"127.0.0.1:{grpc_port}"}
        try:
            wait_until_ready(f"http://127.0.0.1:{port}/v2/health/ready", server)
            print("| round | protocol | req/s | server CPU ms / request |")
            print("| --- | --- | --- | --- |")
            for round_ in range(args.rounds):
                for protocol in PROTOCOLS:
                    found = one_run(
                        protocol, urls, server.pid, clients=args.clients,
                        threads=args.threads, seconds=args.seconds,
                    )  # fmt: skip
                    results[protocol].append(found)
                    print(
                        f"| {round_ + 1} | {protocol} | {found['rps']:.0f} "
                        f"| {found['cpu_ms']:.3f} |",
                        flush=True,
                    )
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    medians = {
        p: (statistics.median(r["rps"] for r in rows), statistics.median(r["cpu_ms"] for r in rows))
        for p, rows in results.items()
    }
    print("\n| protocol | median req/s | median server CPU ms / request |")
    print("| --- | --- | --- |")
    for protocol, (rps, cpu) in medians.items():
        print(f"| {protocol} | {rps:.0f} | {cpu:.3f} |")
    ratio = medians["grpc"][0] / medians["http-binary"][0]
    print(
        f"\ngRPC / binary HTTP throughput: {ratio:.3f} (target >= 1.0: "
        f"{'met' if ratio >= 1.0 else 'MISSED'}); server CPU per request "
        f"{medians['grpc'][1] / medians['http-binary'][1]:.3f}x"
    )


if __name__ == "__main__":
    main()
