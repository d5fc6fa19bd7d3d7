"""Inference latency at fixed batch sizes: p50 and p99 over repeated timed calls."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]


def measure_latency(
    predict: Predict, x: np.ndarray, batch_sizes: Sequence[int] = (1, 64), *, repeats: int = 50
) -> dict[str, float]:
    """``latency_p50_ms_b1``, ``latency_p99_ms_b1``, ... for each batch size."""
    out: dict[str, float] = {}
    for size in batch_sizes:
        batch = np.resize(x, (size, *x.shape[1:])).astype("float32")
        predict(batch)  # warm-up
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            predict(batch)
            times.append((time.perf_counter() - started) * 1000)
        out[f"latency_p50_ms_b{size}"] = float(np.percentile(times, 50))
        out[f"latency_p99_ms_b{size}"] = float(np.percentile(times, 99))
    return out
