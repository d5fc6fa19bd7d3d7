"""Serving on a device: the CPU path for real; a GPU's out-of-memory injected where the
model runs (this machine has no GPU), answered in halves instead of failing the batch.
CUDA itself is exercised by ``benchmarks/gpu_check.py`` on a machine that has one."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

import dnnops
from dnnops.config import ServeConfig
from dnnops.gpu import halving_on_out_of_memory
from dnnops.home import resolve_home
from dnnops.registry.loader import load_version, make_predictor
from dnnops.registry.open import open_registry
from dnnops.serve.metrics import ServerMetrics
from dnnops.serve.runtime import VersionRuntime
from tests.conftest import subprocess_env, write_project

OOM = "CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79.10 GiB total capacity)"


def _fits(limit: int, calls: list[int]) -> Callable[[np.ndarray], np.ndarray]:
    """A model on a GPU with room for ``limit`` rows at a time."""

    def predict(x: np.ndarray) -> np.ndarray:
        calls.append(len(x))
        if len(x) > limit:
            raise torch.cuda.OutOfMemoryError(OOM)
        return x * 2

    return predict


def test_a_batch_too_big_for_the_gpu_is_answered_in_halves() -> None:
    calls: list[int] = []
    splits: list[int] = []
    run = halving_on_out_of_memory(_fits(5, calls), splits.append)
    x = np.arange(24, dtype="float32").reshape(12, 2)
    np.testing.assert_array_equal(run(x), x * 2)  # every row, in order
    assert splits == [12, 6, 6] and calls == [12, 6, 3, 3, 6, 3, 3]
    with pytest.raises(torch.cuda.OutOfMemoryError):  # one row that does not fit still fails
        halving_on_out_of_memory(_fits(0, []), splits.append)(x[:1])


def test_other_errors_are_not_retried() -> None:
    calls: list[int] = []

    def broken(x: np.ndarray) -> np.ndarray:
        calls.append(len(x))
        raise RuntimeError("Failed to allocate memory")  # host memory: no split helps

    with pytest.raises(RuntimeError):
        halving_on_out_of_memory(broken, lambda rows: None)(np.zeros((8, 2)))
    assert calls == [8]


class Linear(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)  # type: ignore[no-any-return]


def test_a_served_version_splits_on_out_of_memory_and_counts_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    reference = np.random.default_rng(0).normal(size=(50, 3)).astype("float32")
    dnnops.log_model(Linear(), name="lin", reference=reference, home=home)
    registry = open_registry(resolve_home(home))
    loaded = load_version(registry, registry.resolve("lin", 1))
    real = make_predictor

    def on_a_small_gpu(*args: object) -> Callable[[np.ndarray], np.ndarray]:
        model = real(*args)  # type: ignore[arg-type]

        def predict(x: np.ndarray) -> np.ndarray:
            if len(x) > 4:
                raise torch.cuda.OutOfMemoryError(OOM)
            return model(x)

        return predict

    monkeypatch.setattr("dnnops.inference.predictor.make_predictor", on_a_small_gpu)
    metrics = ServerMetrics()
    runtime = VersionRuntime.create("lin", loaded, ServeConfig(max_batch_size=16), metrics=metrics)

    async def serve() -> np.ndarray:
        runtime.batcher.start()
        try:
            return await runtime.batcher.infer(reference[:16], timeout_s=10)
        finally:
            await runtime.batcher.stop()

    answered = asyncio.run(serve())
    expected = real(loaded)(reference[:16])
    np.testing.assert_allclose(answered.argmax(axis=1), expected.argmax(axis=1))
    exposition = metrics.exposition().decode()
    counted = 'dnnops_gpu_out_of_memory_total{endpoint="lin",model="lin",version="1"} 3.0'
    assert counted in exposition, exposition  # 16 -> 8 + 8 -> four of 4


def test_serving_on_a_gpu_this_machine_lacks_is_refused_with_the_fix(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: benchmarks/gpu_check.py covers it")
    home = tmp_path / "home"
    reference = np.random.default_rng(0).normal(size=(50, 3)).astype("float32")
    dnnops.log_model(Linear(), name="lin", reference=reference, home=home)
    for serve, fix in (
        ({"device": "cuda"}, "onnxruntime-gpu"),
        ({"device": "cuda", "backend": "torch"}, "sees no CUDA device"),
    ):
        config = write_project(tmp_path, name="lin", serve=serve)
        done = subprocess.run(
            [sys.executable, "-m", "dnnops", "serve", "-c", str(config), "--model", "lin@1"],
            env=subprocess_env(home),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
        assert "serve.device: cuda" in done.stderr and fix in done.stderr, done.stderr
