"""Serving benchmark: dnnops against plain FastAPI and the machine's limits, side by side.

Two MLPs (64->256->256->10 and 784->2048->2048->10), the same weights everywhere, one
instance per JSON request, driven by Debian's ``wrk`` at concurrency 16 and 64. The
dnnops side registers the weights with ``dnnops models import`` and serves them with
``dnnops serve`` (prediction log and metrics on), as a user would. Limits printed beside:
a trivial ASGI app's requests/s for the same body, and the model's offline throughput at
batch 64. Each figure comes with the CPU seconds the server and wrk used.

    .venv/bin/python benchmarks/serving/run.py [--duration 5] [--models small,large]

Needs ``wrk`` (apt-get install wrk). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from dnnops.models import ModelSpec, build_model
from dnnops.registry.export import export_onnx
from dnnops.registry.onnx_runner import OnnxRunner

HERE = Path(__file__).resolve().parent
VENVS = HERE / ".venvs"
"""Other servers live in their own virtual environments (see ``setup_venvs.sh``)."""
BIN = Path(sys.executable).parent
MODELS = {"small": (64, [256, 256]), "large": (784, [2048, 2048])}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    server: str
    model: str
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    server_cpu_s: float
    wrk_cpu_s: float


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_weights(folder: Path, name: str) -> Path:
    features, hidden = MODELS[name]
    torch.manual_seed(0)
    model = build_model(ModelSpec("mlp", (features,), 10, {"hidden": hidden, "dropout": 0.0}))
    path = folder / f"{name}.safetensors"
    save_file(model.state_dict(), str(path))
    return path


def offline_throughput(name: str, threads: int | None = None) -> float:
    """Samples/s of the ONNX graph at batch 64 in one process: the model's own ceiling
    (every core by default; ``threads=1`` is what one server runner gets here)."""
    features, hidden = MODELS[name]
    torch.manual_seed(0)
    model = build_model(
        ModelSpec("mlp", (features,), 10, {"hidden": hidden, "dropout": 0.0})
    ).eval()
    runner = OnnxRunner(export_onnx(model, (features,)), threads)
    batch = np.random.default_rng(0).normal(size=(64, features)).astype("float32")
    runner(batch)
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < 3.0:
        runner(batch)
        runs += 1
    return runs * 64 / (time.perf_counter() - started)


def body_file(folder: Path, name: str) -> Path:
    features = MODELS[name][0]
    values = np.random.default_rng(1).normal(size=features).round(4).tolist()
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"instances": [values]}))
    script = folder / f"{name}.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f'local f = io.open("{path}", "r")\nwrk.body = f:read("*all")\nf:close()\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return script


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"server exited: {process.stderr.read().decode() if process.stderr else ''}"
            )
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("server did not open its port")


def wait_until_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """dnnops binds its port before its workers have loaded: wait for ready, not the port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass  # 503 while loading, or not accepting yet
        time.sleep(0.2)
    raise RuntimeError("dnnops never turned ready")


def cpu_seconds(group: int) -> float:
    """CPU seconds of every live process in the server's process group (its workers too)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_fields(stat.read_text())
        except OSError:
            continue  # the process ended while we looked
        if int(fields[2]) == group:  # field 5 of stat: the process group id
            total += cpu_ticks(fields) / CLOCK_TICKS
    return total


def stat_fields(stat: str) -> list[str]:
    """A ``/proc/PID/stat`` line's fields after the name (the name, in parentheses, may
    hold spaces): index 0 is the stat's 3rd field."""
    return stat.rsplit(")", 1)[1].split()


def cpu_ticks(fields: list[str]) -> int:
    """CPU time used, user and system (the stat's 14th and 15th fields), in clock ticks."""
    return int(fields[11]) + int(fields[12])


def run_wrk(
    url: str, script: Path, concurrency: int, duration: float, server_pid: int
) -> dict[str, float]:
    before = cpu_seconds(server_pid)
    usage_before = os.times()
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{concurrency}",
            f"-d{round(duration)}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    usage_after = os.times()
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _latency(out, "50%"),
        "p99_ms": _latency(out, "99%"),
        "non_2xx": float(m.group(1))
        if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out))
        else 0.0,
        "server_cpu_s": cpu_seconds(server_pid) - before,
        "wrk_cpu_s": (usage_after.children_user + usage_after.children_system)
        - (usage_before.children_user + usage_before.children_system),
    }


def _latency(out: str, label: str) -> float:
    match = re.search(rf"{re.escape(label)}\s+([\d.]+)(us|ms|s)\b", out)
    if match is None:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def processes(kind: str) -> tuple[str, int]:
    """``dnnops-x2`` -> (``dnnops``, 2): the same server with that many worker processes
    (a ``+quiet`` suffix is a dnnops setting, see ``QUIET``)."""
    base, _, count = kind.removesuffix("+quiet").rpartition("-x")
    return (base, int(count)) if base and count.isdigit() else (kind.removesuffix("+quiet"), 1)


QUIET = "name: bench\ndata: {source: 'builtin:digits'}\nserve: {close_when_quiet: true}\n"
"""``dnnops...+quiet``: serve with ``serve.close_when_quiet``, which closes a batch once
every request received is queued instead of waiting out ``max_delay`` (a documented
setting, off by default to keep Triton's batching rule)."""


def start_server(
    kind: str, name: str, weights: Path, home: Path, port: int
) -> tuple[subprocess.Popen[bytes], str]:
    features, hidden = MODELS[name]
    quiet = kind.endswith("+quiet")
    kind, workers = processes(kind)
    env = {
        **os.environ,
        "DNNOPS_HOME": str(home),
        "BENCH_WEIGHTS": str(weights),
        "BENCH_HIDDEN": ",".join(map(str, hidden)),
        "BENCH_FEATURES": str(features),
        # the apps folder after the caller's path: PYTHONPATH=OTHER/src serves another checkout
        "PYTHONPATH": os.pathsep.join(
            filter(None, [os.environ.get("PYTHONPATH"), str(HERE / "apps")])
        ),
    }
    uvicorn = [
        str(BIN / "uvicorn"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--workers",
        str(workers),
    ]
    if kind == "trivial-asgi":
        command, path = [*uvicorn, "trivial_asgi:app"], "/"
    elif kind == "fastapi":
        command, path = [*uvicorn, "fastapi_plain:app"], "/predict"
    elif kind == "litserve":
        command, path = (
            [str(VENVS / "litserve/bin/python"), str(HERE / "apps/litserve_app.py"), str(port)],
            "/predict",
        )
    elif kind == "bentoml":
        command = [
            str(VENVS / "bentoml/bin/bentoml"),
            "serve",
            "bentoml_app:Mlp",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        path = "/predict"
    else:
        command = [
            str(BIN / "dnnops"),
            "serve",
            "--model",
            f"{name}@1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
        if quiet:
            (home / "quiet.yaml").write_text(QUIET)
            command += ["-c", str(home / "quiet.yaml")]
        path = f"/v1/models/{name}:predict"
    process = subprocess.Popen(
        command,
        env=env,
        cwd=HERE / "apps",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    wait_for_port(port, process)
    if kind == "dnnops":
        wait_until_ready(f"http://127.0.0.1:{port}/v2/health/ready", process)
    # Workers behind the port start.
    time.sleep(2.0 if kind in ("litserve", "bentoml") or workers > 1 else 0.5)
    return process, f"http://127.0.0.1:{port}{path}"


def register(home: Path, name: str, weights: Path) -> None:
    features, hidden = MODELS[name]
    subprocess.run(
        [
            str(BIN / "dnnops"),
            "models",
            "import",
            name,
            str(weights),
            "--arch",
            "mlp",
            "--param",
            f"hidden={hidden}",
            "--param",
            "dropout=0.0",
            "--input-shape",
            str(features),
            "--classes",
            "10",
        ],
        env={**os.environ, "DNNOPS_HOME": str(home)},
        check=True,
        capture_output=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--models", default="small,large")
    parser.add_argument(
        "--servers",
        default=(
            "trivial-asgi,trivial-asgi-x2,fastapi,litserve,bentoml,dnnops,dnnops-x2,dnnops-x2+quiet"
        ),
        help="-xN: that many worker processes (uvicorn --workers, dnnops serve --workers)",
    )
    parser.add_argument("--concurrency", default="16,64")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    for other in ("litserve", "bentoml"):
        if other in args.servers and not (VENVS / other).is_dir():
            sys.exit(f"{VENVS / other} is missing: run benchmarks/serving/setup_venvs.sh")
    results: list[Result] = []
    limits: dict[str, float] = {}
    one_thread: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        home = folder / "home"
        for name in args.models.split(","):
            weights = make_weights(folder, name)
            register(home, name, weights)
            script = body_file(folder, name)
            limits[name] = offline_throughput(name)
            one_thread[name] = offline_throughput(name, threads=1)
            for kind in args.servers.split(","):
                port = free_port()
                process, url = start_server(kind, name, weights, home, port)
                try:
                    run_wrk(url, script, 16, 1.0, process.pid)  # warm-up
                    for concurrency in map(int, args.concurrency.split(",")):
                        figures = run_wrk(url, script, concurrency, args.duration, process.pid)
                        results.append(Result(kind, name, concurrency, **figures))  # type: ignore[arg-type]
                finally:
                    os.killpg(process.pid, signal.SIGTERM)  # the server and any workers it forked
                    process.wait(timeout=60)
    report(results, limits, one_thread)


def report(results: list[Result], limits: dict[str, float], one_thread: dict[str, float]) -> None:
    print(
        f"{'model':<7}{'server':<17}{'conc':>5}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'non-2xx':>9}{'server cpu s':>14}{'wrk cpu s':>11}"
    )
    for r in results:
        print(
            f"{r.model:<7}{r.server:<17}{r.concurrency:>5}{r.rps:>10.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}"
            f"{r.non_2xx:>9.0f}{r.server_cpu_s:>14.1f}{r.wrk_cpu_s:>11.1f}"
        )
    for name, throughput in limits.items():
        print(
            f"offline throughput of {name} at batch 64: {throughput:,.0f} samples/s "
            f"({one_thread[name]:,.0f} on one intra-op thread)"
        )
    by_key = {(r.server, r.model, r.concurrency): r for r in results}
    for r in results:
        if processes(r.server)[0] != "dnnops":
            continue
        plain = by_key.get(("fastapi", r.model, r.concurrency))
        parts = [f"{r.server} {r.model} c{r.concurrency}:"]
        if plain:
            parts.append(f"{r.rps / plain.rps:.2f}x FastAPI")
        for trivial_kind in ("trivial-asgi", "trivial-asgi-x2"):
            trivial = by_key.get((trivial_kind, r.model, r.concurrency))
            if trivial:
                parts.append(f"{r.rps / trivial.rps:.0%} of {trivial_kind}")
        parts.append(f"{r.rps / limits[r.model]:.0%} of offline batch-64 throughput")
        print("  ".join(parts))


if __name__ == "__main__":
    main()
