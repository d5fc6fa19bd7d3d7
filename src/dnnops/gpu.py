"""Which device trains and serves, what a GPU is doing, and telling its out-of-memory apart.

``train.device`` and ``serve.device`` take ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
``auto`` is a CUDA device when torch (or, for ONNX serving, onnxruntime-gpu) sees one, so
the same dnnops.yaml trains on a laptop and on a GPU node. Asking for ``cuda`` where there
is none is an error that says what to install or set, never a silent fall back to the CPU.

GPU readings come from NVML (``nvidia-ml-py``, the optional ``gpu`` extra); without it or
without a GPU there are none, and nothing fails.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from dnnops.errors import DnnopsError

DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
GPU_EXTRA = "pip install 'dnnops[gpu]' (onnxruntime-gpu and nvidia-ml-py)"


class DeviceError(DnnopsError):
    """A device that was asked for and is not there."""


def check_device(spec: str) -> str:
    """``spec`` if it names a device dnnops knows (for the config's validators)."""
    if not DEVICE.match(spec):
        raise ValueError(f"{spec!r} is not a device: use auto, cpu, cuda or cuda:N")
    return spec


def torch_device(spec: str, *, field: str, local_rank: int = 0) -> Any:
    """The ``torch.device`` for ``spec``; under torchrun ``auto`` and ``cuda`` take the
    GPU of the process's local rank."""
    import torch

    if spec == "cpu" or (spec == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceError(
            f"{field}: {spec} asked for, but torch {torch.__version__} sees no CUDA device; "
            "set it to auto or cpu, or install a CUDA build of torch on a machine with a GPU"
        )
    index = int(spec.split(":")[1]) if ":" in spec else local_rank
    if index >= torch.cuda.device_count():
        raise DeviceError(
            f"{field}: {spec}: this machine has {torch.cuda.device_count()} CUDA device(s)"
        )
    return torch.device("cuda", index)


def onnx_providers(spec: str, *, available: list[str] | None = None) -> list[Any]:
    """onnxruntime's execution providers for ``spec``: CUDA first (with the CPU for the
    operators it lacks) when onnxruntime-gpu is installed and a GPU is there."""
    if available is None:
        import onnxruntime as ort

        available = list(ort.get_available_providers())
    has_cuda = "CUDAExecutionProvider" in available
    if spec == "cpu" or (spec == "auto" and not has_cuda):
        return ["CPUExecutionProvider"]
    if not has_cuda:
        raise DeviceError(f"serve.device: {spec} needs onnxruntime's CUDA provider: {GPU_EXTRA}")
    index = int(spec.split(":")[1]) if ":" in spec else 0
    return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]


def is_out_of_memory(error: BaseException) -> bool:
    """A GPU out of memory, from torch or from onnxruntime's CUDA provider."""
    torch = sys.modules.get("torch")  # not imported: no torch error (an ONNX server)
    if torch is not None and isinstance(error, torch.cuda.OutOfMemoryError):
        return True
    text = str(error)
    return "CUDA out of memory" in text or ("Failed to allocate memory" in text and "CUDA" in text)


def halving_on_out_of_memory(
    predict: Callable[[np.ndarray], np.ndarray], on_split: Callable[[int], None]
) -> Callable[[np.ndarray], np.ndarray]:
    """``predict`` that answers a batch the GPU has no memory for in two halves (and so
    on down to one row), calling ``on_split(rows)`` each time, instead of failing every
    request in it. A single row that does not fit still fails."""

    def run(x: np.ndarray) -> np.ndarray:
        try:
            return predict(x)
        except Exception as exc:
            if len(x) < 2 or not is_out_of_memory(exc):
                raise
        on_split(len(x))
        half = len(x) // 2
        return np.concatenate([run(x[:half]), run(x[half:])])

    return run


@dataclass(frozen=True)
class GpuReading:
    index: int
    name: str
    utilization: float
    """Share of the last sample period a kernel ran, 0 to 1."""
    memory_used_bytes: int
    memory_total_bytes: int


def gpu_readings() -> list[GpuReading]:
    """Every GPU's utilisation and memory from NVML; none without ``nvidia-ml-py`` or a
    driver."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return []
    try:
        readings = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            rates = pynvml.nvmlDeviceGetUtilizationRates(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            readings.append(
                GpuReading(
                    index,
                    name.decode() if isinstance(name, bytes) else str(name),
                    float(rates.gpu) / 100.0,
                    int(memory.used),
                    int(memory.total),
                )
            )
        return readings
    except pynvml.NVMLError:
        return []
    finally:
        pynvml.nvmlShutdown()
