"""A loaded model version ready to serve: input adapter, batcher, outputs; and endpoints
that hold one or more of them."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dnnops.config import ServeConfig
from dnnops.evaluate.metrics import softmax
from dnnops.registry.loader import LoadedVersion, make_predictor
from dnnops.serve.batcher import BatchStats, DynamicBatcher
from dnnops.serve.inputs import InputAdapter
from dnnops.serve.metrics import ServerMetrics
from dnnops.serve.protocol import OutputTensor


def runner_threads(config: ServeConfig) -> int:
    """Intra-op threads per runner: the configured number, else all cores but one, so the
    event loop (HTTP parsing, logging) keeps a core of its own."""
    return config.threads or max(1, (os.cpu_count() or 2) - 1)


@dataclass
class VersionRuntime:
    endpoint: str
    loaded: LoadedVersion
    adapter: InputAdapter
    batcher: DynamicBatcher
    labels: np.ndarray
    label_datatype: str
    ready: bool = False

    @property
    def model(self) -> str:
        return self.loaded.record.model

    @property
    def version(self) -> str:
        return str(self.loaded.record.version)

    @classmethod
    def create(
        cls, endpoint: str, loaded: LoadedVersion, config: ServeConfig, metrics: ServerMetrics
    ) -> VersionRuntime:
        logits = make_predictor(loaded, runner_threads(config))
        names = (endpoint, loaded.record.model, str(loaded.record.version))

        def predict(x: np.ndarray) -> np.ndarray:
            return softmax(logits(x).astype("float64")).astype("float32")

        def observe(stats: BatchStats) -> None:
            metrics.batch_size.labels(*names).observe(stats.size)
            metrics.compute_seconds.labels(*names).observe(stats.compute_s)
            for wait in stats.queue_waits_s:
                metrics.queue_seconds.labels(*names).observe(wait)

        batcher = DynamicBatcher(
            predict, config.max_batch_size, config.max_delay, config.queue_limit, observe
        )
        metrics.watch_queue(*names, lambda: batcher.queue_depth)
        classes = loaded.classes
        numeric = all(isinstance(c, int) for c in classes)
        return cls(
            endpoint=endpoint,
            loaded=loaded,
            adapter=InputAdapter(loaded.schema, config),
            batcher=batcher,
            labels=np.array(classes, dtype="int64" if numeric else object),
            label_datatype="INT64" if numeric else "BYTES",
        )

    async def start(self, warmup_batch_sizes: list[int]) -> None:
        """Start the batcher and run every warm-up batch size once before turning ready."""
        self.batcher.start()
        shape = [int(d) for d in self.loaded.preprocessor.input_shape]
        for size in warmup_batch_sizes:
            await self.batcher.warm_up(np.zeros((size, *shape), dtype="float32"))
        self.ready = True

    async def stop(self, drain_timeout_s: float) -> None:
        self.ready = False
        await self.batcher.stop(drain_timeout_s)

    def outputs(self, probabilities: np.ndarray) -> list[OutputTensor]:
        labels = self.labels[probabilities.argmax(axis=1)]
        return [
            OutputTensor("label", self.label_datatype, labels),
            OutputTensor("probabilities", "FP32", probabilities),
        ]

    def metadata(self) -> dict[str, Any]:
        return {
            "name": self.endpoint,
            "versions": [self.version],
            "platform": "onnxruntime_onnx"
            if self.loaded.backend != "torch"
            else "pytorch_torchscript",
            "inputs": self.adapter.metadata(),
            "outputs": [
                {"name": "label", "datatype": self.label_datatype, "shape": [-1]},
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(self.labels)]},
            ],
            "parameters": {"model": self.model, "classes": self.loaded.classes},
        }


@dataclass
class Endpoint:
    """A name clients call; the live version answers, others can be addressed directly."""

    name: str
    versions: dict[str, VersionRuntime] = field(default_factory=dict)
    live: str | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def runtime(self, version: str | None = None) -> VersionRuntime | None:
        key = version if version is not None else self.live
        return self.versions.get(key) if key is not None else None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "live_version": self.live,
            "versions": {
                v: {
                    "model": r.model,
                    "ready": r.ready,
                    "queue_depth": r.batcher.queue_depth,
                    "backend": r.loaded.backend,
                    "weight": 100 if v == self.live else 0,
                }
                for v, r in self.versions.items()
            },
            "rollout": None,
        }
