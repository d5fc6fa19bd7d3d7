"""Run an ONNX graph with onnxruntime: what a server needs, without importing torch
(torch alone adds seconds and hundreds of MB to every server worker)."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort

INPUT, OUTPUT, EMBEDDING = "input", "logits", "embedding"
"""The tensor names of every graph dnnops exports (``registry.export``)."""


class OnnxRunner:
    """An onnxruntime session over ONNX bytes; ``threads`` sets intra-op parallelism,
    ``providers`` where it runs (``gpu.onnx_providers``)."""

    def __init__(
        self, data: bytes, threads: int | None = None, providers: list[Any] | None = None
    ) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0  # 0: onnxruntime picks (all cores)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(
            data, options, providers=providers or ["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name

    @property
    def output_names(self) -> list[str]:
        return [str(output.name) for output in self.session.get_outputs()]

    def run_all(self, x: np.ndarray) -> list[np.ndarray]:
        """Every output of the graph, in its order (logits first)."""
        answers: list[np.ndarray] = self.session.run(
            None, {self.input_name: x.astype("float32", copy=False)}
        )
        return answers

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The first output: the logits."""
        return self.run_all(x)[0]
