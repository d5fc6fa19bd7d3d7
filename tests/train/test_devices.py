"""Devices for training: the CPU path for real, and what this machine lacks (a GPU, its
out-of-memory) injected at the boundary. What stays unverified here, CUDA kernels, NCCL
and NVML on real hardware, is what ``benchmarks/gpu_check.py`` runs on a GPU machine."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from dnnops.config import TrainConfig
from dnnops.data.prepare import Arrays
from dnnops.errors import TrainingError
from dnnops.gpu import (
    DeviceError,
    gpu_readings,
    is_out_of_memory,
    onnx_providers,
    torch_device,
)
from dnnops.train.loop import LoopContext, Trainer
from tests.conftest import CliResult, write_project


def _arrays(rows: int) -> Arrays:
    rng = np.random.default_rng(0)
    return Arrays(rng.normal(size=(rows, 4)).astype("float32"), rng.integers(0, 2, rows))


class _OutOfMemoryOver(nn.Module):
    """A model that runs its device out of memory on batches of more than ``limit`` rows."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.layer = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(x) > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.layer(x)  # type: ignore[no-any-return]


def test_a_batch_too_big_for_the_device_stops_training_naming_grad_accum(tmp_path: Path) -> None:
    config = TrainConfig(epochs=1, batch_size=32, grad_accum=2)
    trainer = Trainer(
        _OutOfMemoryOver(limit=16),
        config,
        _arrays(64),
        valid=_arrays(8),
        ctx=LoopContext("run", tmp_path),
    )
    with pytest.raises(TrainingError) as raised:
        trainer.fit()
    message = str(raised.value)
    assert "batch_size: 16" in message and "grad_accum: 4" in message, message


def test_an_error_that_is_not_out_of_memory_is_not_disguised(tmp_path: Path) -> None:
    class Broken(_OutOfMemoryOver):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("shape mismatch")

    trainer = Trainer(
        Broken(0),
        TrainConfig(epochs=1),
        _arrays(8),
        valid=_arrays(4),
        ctx=LoopContext("r", tmp_path),
    )
    with pytest.raises(RuntimeError, match="shape mismatch"):
        trainer.fit()


def test_devices_resolve_and_a_missing_gpu_is_named() -> None:
    assert torch_device("cpu", field="train.device").type == "cpu"
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: benchmarks/gpu_check.py covers it")
    assert torch_device("auto", field="train.device").type == "cpu"
    with pytest.raises(DeviceError, match=r"train.device: cuda:1 asked for.*set it to auto or cpu"):
        torch_device("cuda:1", field="train.device")
    with pytest.raises(ValueError, match="not a device"):
        TrainConfig(device="gpu")


def test_onnx_providers_follow_what_onnxruntime_has() -> None:
    cpu_only = ["CPUExecutionProvider"]
    with_cuda = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert onnx_providers("auto", available=cpu_only) == ["CPUExecutionProvider"]
    assert onnx_providers("cpu", available=with_cuda) == ["CPUExecutionProvider"]
    assert onnx_providers("cuda:1", available=with_cuda) == [
        ("CUDAExecutionProvider", {"device_id": 1}),
        "CPUExecutionProvider",
    ]
    with pytest.raises(DeviceError, match="onnxruntime-gpu"):
        onnx_providers("cuda", available=cpu_only)


def test_out_of_memory_is_told_apart_from_other_errors() -> None:
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    onnx_text = "Failed to allocate memory for requested buffer of size 1073741824 (CUDA)"
    assert is_out_of_memory(RuntimeError(onnx_text))
    assert not is_out_of_memory(RuntimeError("Failed to allocate memory"))  # host memory
    assert not is_out_of_memory(ValueError("shape mismatch"))


def _fake_nvml(fail: bool = False) -> types.ModuleType:
    """NVML's calls as nvidia-ml-py names them, answering for one 80 GB GPU."""
    module = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    def init() -> None:
        if fail:
            raise NVMLError("Driver Not Loaded")

    module.NVMLError = NVMLError  # type: ignore[attr-defined]
    module.nvmlInit = init  # type: ignore[attr-defined]
    module.nvmlShutdown = lambda: None  # type: ignore[attr-defined]
    module.nvmlDeviceGetCount = lambda: 1  # type: ignore[attr-defined]
    module.nvmlDeviceGetHandleByIndex = lambda i: i  # type: ignore[attr-defined]
    module.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=37)  # type: ignore[attr-defined]
    module.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=2**30, total=80 * 2**30)  # type: ignore[attr-defined]
    module.nvmlDeviceGetName = lambda h: b"NVIDIA H100"  # type: ignore[attr-defined]
    return module


def test_gpu_readings_come_from_nvml_and_are_empty_without_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml())
    [reading] = gpu_readings()
    assert (reading.name, reading.utilization, reading.memory_used_bytes) == (
        "NVIDIA H100",
        0.37,
        2**30,
    )
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml(fail=True))
    assert gpu_readings() == []
    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed: import fails
    assert gpu_readings() == []


def test_the_cli_names_the_device_and_precision_it_cannot_use(
    home: Path, cli: Callable[..., CliResult]
) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: benchmarks/gpu_check.py covers it")
    config = write_project(home.parent, train={"epochs": 1, "device": "cuda"})
    result = cli("train", "-c", str(config))
    assert result.code != 0 and "Traceback" not in result.err
    assert "train.device: cuda asked for" in result.err, result.err
    config = write_project(home.parent, train={"epochs": 1, "precision": "fp16"})
    result = cli("train", "-c", str(config))
    assert result.code != 0 and "Traceback" not in result.err
    assert "fp16 needs a CUDA device" in result.err, result.err
    config = write_project(home.parent, train={"epochs": 1, "device": "cpu"})
    assert cli("train", "-c", str(config)).code == 0
