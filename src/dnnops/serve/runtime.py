"""A loaded model version ready to serve: input adapter, batcher, outputs; and endpoints
that hold one or more of them."""

from __future__ import annotations

import asyncio
import os
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from dnnops.config import ServeConfig
from dnnops.data.example import example_instance
from dnnops.evaluate.decision import Decision, decide
from dnnops.gpu import halving_on_out_of_memory
from dnnops.inference.adapters import Adapter, adapter_for
from dnnops.inference.predictor import Predictor, probabilities_of
from dnnops.predlog.redaction import Redaction
from dnnops.registry.loader import LoadedVersion, make_cascade
from dnnops.rollout.policy import RolloutState
from dnnops.serve.batcher import BatchStats, DynamicBatcher
from dnnops.serve.metrics import ServerMetrics
from dnnops.serve.protocol import OutputTensor

if TYPE_CHECKING:
    from dnnops.evaluate.report import PredictLogits


def runner_threads(config: ServeConfig, *, images: bool = False) -> int:
    """Intra-op threads per runner: the configured number, else all cores but one (so the
    event loop, HTTP parsing and logging, keeps a core of its own) shared by the workers.
    An image model takes every core: its convolutions outweigh the HTTP work by far (a
    ResNet-18 at 224x224 answered 40 requests/s with both cores here, 23 with one:
    ``benchmarks/serving/media.py``)."""
    if config.threads:
        return config.threads
    spare = 0 if images else 1
    return max(1, ((os.cpu_count() or 2) - spare) // config.workers)


@dataclass(frozen=True)
class SplitAnswers:
    probabilities: np.ndarray
    """Probabilities, or a regressor's values (N, 1)."""
    tiers: np.ndarray | None
    embeddings: np.ndarray | None


@dataclass
class VersionRuntime:
    endpoint: str
    loaded: LoadedVersion
    adapter: Adapter
    batcher: DynamicBatcher
    labels: np.ndarray
    label_datatype: str
    threads: int = 1
    """Intra-op threads of its runner: model time x threads = CPU time."""
    redaction: Redaction | None = None
    """What the prediction log hides of its inputs (its schema's sensitive features)."""
    tier_counts: TierCounts = field(default_factory=lambda: TierCounts())
    ready: bool = False
    decision: Decision | None = None
    """A binary classifier's tuned threshold, read from the manifest once at load."""
    embedding_width: int = 0
    """Columns of embedding after the outputs in its batcher's answers (image and text
    versions); 0: none."""

    def __post_init__(self) -> None:
        self.decision = self.loaded.decision

    @property
    def model(self) -> str:
        return self.loaded.record.model

    @property
    def version(self) -> str:
        return str(self.loaded.record.version)

    @classmethod
    def create(
        cls,
        endpoint: str,
        loaded: LoadedVersion,
        config: ServeConfig,
        *,
        metrics: ServerMetrics,
        arriving: Callable[[], int] | None = None,
        redaction: Redaction | None = None,
    ) -> VersionRuntime:
        names = (endpoint, loaded.record.model, str(loaded.record.version))
        medium = loaded.preprocessor.medium
        threads = runner_threads(config, images=medium is not None and medium.image is not None)

        def halving(predict: PredictLogits) -> PredictLogits:
            return halving_on_out_of_memory(
                predict, lambda rows: metrics.out_of_memory.labels(*names).inc()
            )

        tier_counts = TierCounts()
        embedding_width = 0
        if loaded.tiers is not None:
            predict = _tiered(
                loaded, config, metrics=metrics, names=names, wrap=halving, counts=tier_counts
            )
        else:  # each request's rows are checked for NaN after the batch (app.py)
            predictor = Predictor.create(loaded, threads, device=config.device, wrap=halving)
            predict = predictor.embedded or predictor.outputs  # embeddings: last columns
            embedding_width = predictor.embedding_width

        # A series' child looked up once, not per batch and per queued request (~1 us each)
        batch_size = metrics.batch_size.labels(*names)
        compute_seconds = metrics.compute_seconds.labels(*names)
        queue_seconds = metrics.queue_seconds.labels(*names)

        def observe(stats: BatchStats) -> None:
            batch_size.observe(stats.size)
            compute_seconds.observe(stats.compute_s)
            for wait in stats.queue_waits_s:
                queue_seconds.observe(wait)

        batcher = DynamicBatcher(
            predict,
            config.max_batch_size,
            config.max_delay,
            queue_limit=config.queue_limit,
            on_batch=observe,
            arriving=arriving if config.close_when_quiet else None,
        )
        metrics.watch_queue(*names, depth=lambda: batcher.queue_depth)
        classes = loaded.classes
        numeric = all(isinstance(c, int) for c in classes)
        return cls(
            endpoint=endpoint,
            loaded=loaded,
            adapter=adapter_for(
                loaded.schema, config, loaded.preprocessor, input_name=loaded.input_name
            ),
            batcher=batcher,
            labels=np.array(classes, dtype="int64" if numeric else object),
            label_datatype="INT64" if numeric else "BYTES",
            threads=threads,
            redaction=redaction,
            tier_counts=tier_counts,
            embedding_width=embedding_width,
        )

    @property
    def tiered(self) -> bool:
        return self.loaded.tiers is not None

    def split_answers(self, answers: np.ndarray) -> SplitAnswers:
        """A batch's probabilities, and what its batcher hands back beside them in the
        same array: the tier that answered each row (the last column of a tiered
        version's) or the embeddings (the last ``embedding_width`` of an image or text
        version's)."""
        if self.tiered:
            return SplitAnswers(answers[:, :-1], answers[:, -1].astype("int64"), None)
        if self.embedding_width:
            width = self.embedding_width
            # the answer is serialized straight from the array: it must be C-contiguous
            probabilities = np.ascontiguousarray(answers[:, :-width])
            return SplitAnswers(probabilities, None, answers[:, -width:])
        return SplitAnswers(answers, None, None)

    def tier_refs(self) -> list[str]:
        """The tiers' model@version, first tier first (empty for one model)."""
        return [m.ref for m in self.loaded.tiers.members] if self.loaded.tiers else []

    async def start(self, warmup_batch_sizes: list[int]) -> None:
        """Start the batcher and run every warm-up batch size once before turning ready."""
        self.batcher.start()
        shape = [int(d) for d in self.loaded.preprocessor.input_shape]
        for size in warmup_batch_sizes:
            await self.batcher.warm_up(np.zeros((size, *shape), dtype="float32"))
        self.tier_counts.counting = True
        self.ready = True

    async def stop(self, drain_timeout_s: float) -> None:
        self.ready = False
        await self.batcher.stop(drain_timeout_s)

    @property
    def is_regression(self) -> bool:
        return self.loaded.is_regression

    def outputs(self, probabilities: np.ndarray) -> list[OutputTensor]:
        """v2 output tensors: ``label`` and ``probabilities``, or one ``prediction``."""
        if self.is_regression:
            return [OutputTensor("prediction", "FP32", probabilities.reshape(-1))]
        labels = self.labels[decide(probabilities, self.decision)]
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
            "outputs": [{"name": "prediction", "datatype": "FP32", "shape": [-1]}]
            if self.is_regression
            else [
                {"name": "label", "datatype": self.label_datatype, "shape": [-1]},
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(self.labels)]},
            ],
            "parameters": {
                "model": self.model,
                "classes": self.loaded.classes,
                "example_instance": example_instance(self.loaded.schema, self.loaded.profile),
            },
        }


@dataclass
class TierCounts:
    """Whether a tiered version's batches are counted in /metrics: not its warm-up's."""

    counting: bool = False


def _tiered(
    loaded: LoadedVersion,
    config: ServeConfig,
    *,
    metrics: ServerMetrics,
    names: tuple[str, str, str],
    wrap: Callable[[PredictLogits], PredictLogits],
    counts: TierCounts,
) -> Callable[[np.ndarray], np.ndarray]:
    """A tiered version's batch function: probabilities with the answering tier appended
    as a last column, each tier's rows and CPU counted in /metrics."""
    threads = runner_threads(config)
    cascade = make_cascade(loaded, threads, device=config.device, wrap=wrap)
    assert loaded.tiers is not None
    refs = [m.ref for m in loaded.tiers.members]
    rows = [metrics.tier_predictions.labels(*names, ref) for ref in refs]
    cpu = [metrics.tier_cpu_seconds.labels(*names, ref) for ref in refs]

    def predict(x: np.ndarray) -> np.ndarray:
        answer = cascade(x)
        if counts.counting:
            answered = np.bincount(answer.tiers, minlength=len(refs))
            for tier, seconds in enumerate(answer.seconds):
                cpu[tier].inc(seconds * threads)
            for tier, count in enumerate(answered.tolist()):
                if count:
                    rows[tier].inc(count)
        probabilities = probabilities_of(answer.logits)
        return np.column_stack([probabilities, answer.tiers.astype("float32")])

    return predict


def traffic_bucket(key: str | None) -> float:
    """Where a request falls in [0, 100): a stable hash of its routing key, so one user
    always meets the same version; requests without a key are spread at random."""
    if key is None:
        return random.random() * 100.0
    return zlib.crc32(key.encode()) % 10_000 / 100.0


@dataclass
class Endpoint:
    """A name clients call. The stable version answers, except for the share of traffic
    routed to a canary; a shadow gets a copy of every routed request, never answering.
    Any loaded version can still be addressed directly (``/versions/N``)."""

    name: str
    versions: dict[str, VersionRuntime] = field(default_factory=dict)
    live: str | None = None
    canary: str | None = None
    canary_weight: float = 0.0
    shadow: str | None = None
    rollout: RolloutState | None = None
    """The rollout in progress (its persisted state), shown by ``describe``."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def runtime(self, version: str | None = None) -> VersionRuntime | None:
        key = version if version is not None else self.live
        return self.versions.get(key) if key is not None else None

    def route(self, key: str | None) -> VersionRuntime | None:
        """The version that answers a request with routing key ``key``."""
        if self.canary is not None and traffic_bucket(key) < self.canary_weight:
            canary = self.versions.get(self.canary)
            if canary is not None and canary.ready:
                return canary
        return self.runtime()

    def mirror(self) -> VersionRuntime | None:
        """The shadow version, when one is set and ready."""
        runtime = self.versions.get(self.shadow) if self.shadow is not None else None
        return runtime if runtime is not None and runtime.ready else None

    def set_traffic(
        self, canary: str | None, weight: float = 0.0, shadow: str | None = None
    ) -> None:
        """Change the split at once: every later request sees the new weights."""
        self.canary, self.canary_weight = canary, (weight if canary is not None else 0.0)
        self.shadow = shadow

    def weights(self) -> dict[str, float]:
        shares = {v: 0.0 for v in self.versions}
        if self.live is not None:
            shares[self.live] = 100.0 - self.canary_weight
        if self.canary is not None:
            shares[self.canary] = self.canary_weight
        return shares

    def describe(self) -> dict[str, Any]:
        weights = self.weights()
        return {
            "name": self.name,
            "live_version": self.live,
            "canary_version": self.canary,
            "shadow_version": self.shadow,
            "versions": {
                v: {
                    "model": r.model,
                    "ready": r.ready,
                    "queue_depth": r.batcher.queue_depth,
                    "backend": r.loaded.backend,
                    "weight": weights.get(v, 0.0),
                    "shadow": v == self.shadow,
                }
                for v, r in self.versions.items()
            },
            "rollout": None if self.rollout is None else self.rollout.summary(),
        }
