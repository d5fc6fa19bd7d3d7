"""What reaching the registry through a server costs (issue 32, item 2): registering a
version with one ``--mb`` MiB file and reading that file back, once through the database
and the artifact store directly (``ModelRegistry``) and once through a real server's
``/v1/registry`` routes (``RemoteRegistry``: 4 MiB digest-checked upload chunks, ranged
downloads). The two alternate ``--rounds`` times on one machine, against one server; the
table gives each round's seconds and MiB/s, then the medians and their ratio.

    .venv/bin/python benchmarks/registry_over_http.py [--rounds 5] [--mb 64]

No target was set; the table says what a laptop on the server's host pays at most (the
network between a real laptop and a server adds its own time).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "serving"))
from run import free_port, make_weights, register, start_server

from dnnops.home import resolve_home
from dnnops.registry.open import open_database_registry
from dnnops.registry.remote import RegistryServer, RemoteRegistry
from dnnops.registry.versions import Registration, Registry

TOKEN = "bench-token"


def timed_round(registry: Registry, model: str, payload: bytes) -> tuple[float, float]:
    """(seconds to register, seconds to read the file back, checked)."""
    request = Registration(
        model=model,
        source="imported",
        files={"weights.bin": payload},
        manifest={},
        metrics={},
        gates_passed=None,
    )
    started = time.perf_counter()
    record = registry.register(request)
    registered = time.perf_counter()
    data = registry.file(record, registry.manifest(record), "weights.bin")
    read = time.perf_counter()
    assert data == payload
    return registered - started, read - registered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mb", type=float, default=64.0)
    args = parser.parse_args()
    size = int(args.mb * 1024 * 1024)
    results: dict[str, list[tuple[float, float]]] = {"database": [], "http": []}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        home = folder / "home"
        register(home, "small", make_weights(folder, "small"))  # the server serves something
        os.environ["DNNOPS_ADMIN_TOKEN"] = TOKEN
        port = free_port()
        process, _ = start_server("dnnops", "small", folder / "small.safetensors", home, port)
        try:
            sides: dict[str, Registry] = {
                "database": open_database_registry(resolve_home(home)),
                "http": RemoteRegistry(RegistryServer(f"http://127.0.0.1:{port}", TOKEN)),
            }
            print("| round | through | register s | read s | up MiB/s | down MiB/s |")
            print("| --- | --- | --- | --- | --- | --- |")
            for round_ in range(args.rounds):
                for name, registry in sides.items():
                    payload = os.urandom(size)  # new bytes: no upload is skipped as known
                    up, down = timed_round(registry, f"bench-{name}", payload)
                    results[name].append((up, down))
                    print(
                        f"| {round_ + 1} | {name} | {up:.3f} | {down:.3f} "
                        f"| {args.mb / up:.0f} | {args.mb / down:.0f} |",
                        flush=True,
                    )
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
    print()
    print("| through | median register s | median read s |")
    print("| --- | --- | --- |")
    medians = {}
    for name, rows in results.items():
        medians[name] = (
            statistics.median(r[0] for r in rows),
            statistics.median(r[1] for r in rows),
        )
        print(f"| {name} | {medians[name][0]:.3f} | {medians[name][1]:.3f} |")
    up_ratio = medians["http"][0] / medians["database"][0]
    down_ratio = medians["http"][1] / medians["database"][1]
    print(f"http / database: register {up_ratio:.2f}x the time, read {down_ratio:.2f}x")


if __name__ == "__main__":
    main()
