"""What dnnops does on a GPU, checked on a machine that has one (issue 16, item 7).

The test suite runs the CPU paths and injects a GPU's failures; this script runs the real
thing and prints one table of what worked:

- training on ``cuda`` in fp32, bf16 and fp16 (autocast; a gradient scaler for fp16), with
  the GPU's peak memory and NVML utilisation in the epoch records;
- ``dnnops train`` end to end with ``train.device: cuda``, and under ``torchrun`` (NCCL);
- serving: the torch backend and onnxruntime's CUDA provider (when onnxruntime-gpu is
  installed) against the CPU on the same batches, rows per second side by side;
- ``/metrics``: the NVML gauges a server on a GPU exports;
- out of memory, for real: the GPU filled with ballast, then a batch that cannot fit is
  served in halves, and training stops with the message that names ``grad_accum``.

    .venv/bin/python benchmarks/gpu_check.py [--quick]

On a machine without a GPU every row says so and the script exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dnnops.config import TrainConfig
from dnnops.data.prepare import Arrays
from dnnops.errors import TrainingError
from dnnops.gpu import gpu_readings, halving_on_out_of_memory, is_out_of_memory
from dnnops.serve.metrics import ServerMetrics
from dnnops.train.loop import LoopContext, Trainer

REPO = Path(__file__).resolve().parents[1]
DNNOPS = [sys.executable, "-m", "dnnops"]
PROJECT = """name: digits
data: {source: "builtin:digits", preprocessing: {numeric: scale}}
model: {arch: mlp, params: {hidden: [512, 512], dropout: 0.1}}
train: {epochs: 3, batch_size: 128, lr: 0.003, seed: 1, device: %s, precision: %s}
"""


@dataclass
class Row:
    check: str
    result: str
    detail: str = ""


@dataclass
class Setup:
    """What the checks share: the device, the data size, a registered digits MLP."""

    rows: int
    scratch: Path
    has_gpu: bool = torch.cuda.is_available()
    registry: Any = None
    record: Any = None
    batch: np.ndarray | None = None

    @property
    def no_gpu(self) -> str:
        return f"skipped: torch {torch.__version__} sees no CUDA device"


Check = Callable[[Setup], str]
CHECKS: list[tuple[str, Check]] = []


def check(name: str) -> Callable[[Check], Check]:
    """Register a check, run in the order they are written."""

    def register(body: Check) -> Check:
        CHECKS.append((name, body))
        return body

    return register


def run(name: str, body: Check, setup: Setup) -> Row:
    """ok, skipped or FAILED and its detail: a failed check is a row, not the end."""
    started = time.perf_counter()
    try:
        detail = body(setup)
        result = "skipped" if detail.startswith("skipped") else "ok"
        if detail.startswith("FAILED"):
            result = "FAILED"
    except Exception as exc:
        result, detail = "FAILED", f"{type(exc).__name__}: {exc}"[:160]
    return Row(name, result, f"{detail} ({time.perf_counter() - started:.1f} s)")


def _data(rows: int, features: int = 64, classes: int = 10) -> tuple[Arrays, Arrays]:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(classes, features)).astype("float32")
    y = rng.integers(0, classes, rows)
    x = centers[y] + rng.normal(scale=0.8, size=(rows, features)).astype("float32")
    cut = rows * 9 // 10
    return Arrays(x[:cut], y[:cut]), Arrays(x[cut:], y[cut:])


def _mlp(features: int = 64, classes: int = 10, hidden: int = 512) -> nn.Module:
    return nn.Sequential(
        nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, classes),
    )  # fmt: skip


class _Records:
    """The epoch records a run writes, kept in memory."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []

    def epoch(self, run_id: str, epoch: int, metrics: dict[str, float]) -> None:
        self.epochs.append(metrics)

    def checkpoint(self, *args: Any, **kwargs: Any) -> None:
        pass

    def status(self, *args: Any, **kwargs: Any) -> None:
        pass


def _train(precision: str, device: torch.device, rows: int) -> str:
    train, valid = _data(rows)
    config = TrainConfig(epochs=2, batch_size=256, precision=precision, device=str(device))
    records = _Records()
    with tempfile.TemporaryDirectory() as scratch:
        torch.manual_seed(0)
        ctx = LoopContext("gpu-check", Path(scratch), recorder=records, device=device)
        started = time.perf_counter()
        state = Trainer(_mlp(), config, train, valid=valid, ctx=ctx).fit()
        seconds = time.perf_counter() - started
    gpu = {k: round(v, 3) for k, v in records.epochs[-1].items() if k.startswith("gpu_")}
    return (
        f"valid_accuracy {state.history[-1]['valid_accuracy']:.3f}, "
        f"{len(train.x) * 2 / seconds:,.0f} samples/s, epoch record {gpu}"
    )


def _rate(predict: Callable[[np.ndarray], np.ndarray], batch: np.ndarray) -> float:
    """Rows per second over two seconds, after a warm-up (kernels, allocator)."""
    predict(batch)
    started, done = time.perf_counter(), 0
    while time.perf_counter() - started < 2.0:
        predict(batch)
        done += len(batch)
    return done / (time.perf_counter() - started)


def _ballast(leave_bytes: int) -> list[torch.Tensor]:
    """Fill the GPU until about ``leave_bytes`` are free: the next big allocation fails."""
    free, _ = torch.cuda.mem_get_info()
    held, chunk = [], 1 << 28
    while free - chunk > leave_bytes:
        held.append(torch.empty(chunk, dtype=torch.uint8, device="cuda"))
        free, _ = torch.cuda.mem_get_info()
    return held


def _cli_train(folder: Path, device: str, precision: str, *launcher: str) -> dict[str, Any]:
    config = folder / "dnnops.yaml"
    config.write_text(PROJECT % (device, precision))
    env = {**os.environ, "DNNOPS_HOME": str(folder / "home")}
    done = subprocess.run(
        [*(launcher or [sys.executable]), "-m", "dnnops", "train", "-c", str(config), "--json"],
        env=env, capture_output=True, text=True, timeout=900, check=True,
    )  # fmt: skip
    start = done.stdout.index("{\n") if "{\n" in done.stdout else done.stdout.index("{")
    payload: dict[str, Any] = json.JSONDecoder().raw_decode(done.stdout[start:])[0]
    return payload


@check("environment")
def environment(setup: Setup) -> str:
    import onnxruntime as ort

    name = torch.cuda.get_device_name(0) if setup.has_gpu else "no GPU"
    readings = gpu_readings()
    nvml = f"NVML sees {len(readings)} GPU(s)" if readings else "no NVML readings"
    return f"{name}; torch {torch.__version__}; ort {ort.get_available_providers()}; {nvml}"


@check("train on cuda, fp32")
def train_fp32(setup: Setup) -> str:
    return _train("fp32", torch.device("cuda", 0), setup.rows) if setup.has_gpu else setup.no_gpu


@check("train on cuda, bf16 autocast")
def train_bf16(setup: Setup) -> str:
    return _train("bf16", torch.device("cuda", 0), setup.rows) if setup.has_gpu else setup.no_gpu


@check("train on cuda, fp16 autocast + gradient scaler")
def train_fp16(setup: Setup) -> str:
    return _train("fp16", torch.device("cuda", 0), setup.rows) if setup.has_gpu else setup.no_gpu


@check("train on cpu, fp32 (the same loop, a tenth of the rows)")
def train_cpu(setup: Setup) -> str:
    return _train("fp32", torch.device("cpu"), setup.rows // 10)


@check("dnnops train with train.device: cuda, bf16")
def cli_train(setup: Setup) -> str:
    if not setup.has_gpu:
        return setup.no_gpu
    folder = setup.scratch / "cli"
    folder.mkdir()
    metrics = _cli_train(folder, "cuda", "bf16")["metrics"]
    return f"test_accuracy {metrics['test_accuracy']:.3f}; registered (exported on the CPU)"


@check("torchrun, a process per GPU, NCCL")
def torchrun(setup: Setup) -> str:
    if not setup.has_gpu:
        return setup.no_gpu
    folder = setup.scratch / "torchrun"
    folder.mkdir()
    count = torch.cuda.device_count()
    launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={count}"]
    metrics = _cli_train(folder, "auto", "fp32", *launcher, "--master_port=29512")["metrics"]
    return f"{count} rank(s); test_accuracy {metrics['test_accuracy']:.3f}"


@check("serve, torch backend: cuda against cpu (rows/s, batch 4096)")
def serve_torch(setup: Setup) -> str:
    from dnnops.registry.loader import load_version, make_predictor

    assert setup.batch is not None
    loaded = load_version(setup.registry, setup.record, "torch")
    on_cpu = _rate(make_predictor(loaded, None, "cpu"), setup.batch)
    if not setup.has_gpu:
        return f"{setup.no_gpu}; cpu {on_cpu:,.0f} rows/s"
    on_gpu = make_predictor(loaded, None, "cuda")
    same = np.allclose(on_gpu(setup.batch), make_predictor(loaded)(setup.batch), atol=1e-3)
    return f"cuda {_rate(on_gpu, setup.batch):,.0f} vs cpu {on_cpu:,.0f} rows/s; same: {same}"


@check("serve, onnx backend: CUDA provider against CPU (rows/s, batch 4096)")
def serve_onnx(setup: Setup) -> str:
    import onnxruntime as ort

    from dnnops.registry.loader import load_version, make_predictor

    assert setup.batch is not None
    loaded = load_version(setup.registry, setup.record)
    on_cpu = _rate(make_predictor(loaded, None, "cpu"), setup.batch)
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return f"skipped: no onnxruntime-gpu (dnnops[gpu]); cpu {on_cpu:,.0f} rows/s"
    on_gpu = _rate(make_predictor(loaded, None, "cuda"), setup.batch)
    return f"cuda {on_gpu:,.0f} vs cpu {on_cpu:,.0f} rows/s"


@check("/metrics: the NVML gauges of a server on a GPU")
def metrics(setup: Setup) -> str:
    exported = ServerMetrics()
    exported.watch_gpus = True
    lines = [
        line
        for line in exported.exposition().decode().splitlines()
        if line.startswith(("dnnops_gpu_utilization", "dnnops_gpu_memory"))
    ]
    if not lines:
        return "skipped: no NVML readings (nvidia-ml-py, a driver, a GPU)"
    return "; ".join(lines[:2])


@check("out of memory while serving: the batch answered in halves")
def serving_oom(setup: Setup) -> str:
    if not setup.has_gpu:
        return setup.no_gpu
    from dnnops.registry.loader import load_version, make_predictor

    assert setup.batch is not None
    predict = make_predictor(load_version(setup.registry, setup.record, "torch"), None, "cuda")
    big = np.ascontiguousarray(np.resize(setup.batch, (1_000_000, setup.batch.shape[1])))
    expected = predict(big[:1000])
    ballast = _ballast(leave_bytes=big.nbytes * 2)  # room for the input, not 512-wide layers
    splits: list[int] = []
    try:
        answered = halving_on_out_of_memory(predict, splits.append)(big)
    finally:
        del ballast
        torch.cuda.empty_cache()
    if not splits:
        return "FAILED: the batch fit; no out-of-memory was provoked"
    same = np.allclose(answered[:1000], expected, atol=1e-3)
    return f"{len(answered):,} rows, {len(splits)} split(s) from {splits[0]:,}; same: {same}"


@check("out of memory while training: stops, naming grad_accum")
def training_oom(setup: Setup) -> str:
    if not setup.has_gpu:
        return setup.no_gpu
    train, valid = _data(20_000, features=2048)
    config = TrainConfig(epochs=1, batch_size=20_000, device="cuda")
    ballast = _ballast(leave_bytes=train.x.nbytes * 2)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            ctx = LoopContext("oom", Path(scratch), device=torch.device("cuda", 0))
            model = _mlp(features=2048, hidden=4096)
            Trainer(model, config, train, valid=valid, ctx=ctx).fit()
    except TrainingError as exc:
        named = "grad_accum" in str(exc) and is_out_of_memory(exc.__cause__ or exc)
        return str(exc)[:140] if named else f"FAILED: {exc}"
    finally:
        del ballast
        torch.cuda.empty_cache()
    return "FAILED: training fit in memory; no out-of-memory was provoked"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a tenth of the training rows")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        setup = Setup(rows=20_000 if args.quick else 200_000, scratch=Path(scratch))
        from dnnops.home import resolve_home
        from dnnops.registry.open import open_registry

        _cli_train(setup.scratch, "cpu", "fp32")  # the model every serving check loads
        setup.registry = open_registry(resolve_home(setup.scratch / "home"))
        setup.record = setup.registry.resolve("digits", 1)
        setup.batch = np.resize(_data(4096)[0].x[:, :64], (4096, 64)).astype("float32")
        rows = [run(name, body, setup) for name, body in CHECKS]
    width = max(len(r.check) for r in rows)
    print(f"\n{'check':{width}}  result   detail")
    for row in rows:
        print(f"{row.check:{width}}  {row.result:7}  {row.detail}")
    failed = [r for r in rows if r.result == "FAILED"]
    print(f"\n{len(rows) - len(failed)} of {len(rows)} checks ok or skipped; {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
