"""The predictor contract: a version's graph as every path calls it.

Preprocessed inputs go in; a classifier's class probabilities (rows summing to 1,
float32) or a regressor's values ((N, 1), in the target's units) come out, never logits.
A NaN or an infinity is the model failing, and is refused with the rows named
(``NonFiniteOutput``) the same way by the server (per request), batch prediction (per
chunk, rows numbered in the file) and the Python API. The answered labels come from the
version's own decision (a binary classifier's tuned threshold).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dnnops.evaluate.decision import decide
from dnnops.evaluate.metrics import softmax
from dnnops.models.outputs import refuse_non_finite
from dnnops.registry.loader import LoadedVersion, make_predictor
from dnnops.registry.onnx_runner import EMBEDDING

Outputs = Callable[[np.ndarray], np.ndarray]
"""Preprocessed inputs -> probabilities or values (what ``Predictor.outputs`` is)."""


def probabilities_of(logits: np.ndarray) -> np.ndarray:
    """Class probabilities from a graph's logits, in float64 for the exponent."""
    probabilities: np.ndarray = softmax(logits.astype("float64")).astype("float32")
    return probabilities


def as_outputs(loaded: LoadedVersion, logits: Callable[[np.ndarray], np.ndarray]) -> Outputs:
    """``logits`` (a graph's raw answer) turned into the contract's outputs."""
    if loaded.is_regression:  # the graph answers in the target's units: (N, 1)
        return lambda x: logits(x).astype("float32", copy=False)
    return lambda x: probabilities_of(logits(x))


def embedding_outputs(
    loaded: LoadedVersion,
    threads: int | None = None,
    *,
    device: str = "cpu",
    wrap: Callable[[Outputs], Outputs] = lambda predict: predict,
) -> Outputs | None:
    """The outputs of an image or text version with its embeddings in the last
    ``loaded.embedding.dims`` columns: one forward pass answers the request and feeds
    embedding drift. None for a version without them (or served on torch, or tiered)."""
    if loaded.embedding is None or loaded.tiers is not None or loaded.backend == "torch":
        return None
    from dnnops.gpu import onnx_providers
    from dnnops.registry.onnx_runner import OnnxRunner

    runner = OnnxRunner(loaded.graph, threads, onnx_providers(device))
    if EMBEDDING not in runner.output_names:
        return None
    width = loaded.embedding.dims

    def graph(x: np.ndarray) -> np.ndarray:
        logits, embedding = runner.run_all(x)[:2]
        return np.concatenate([logits, embedding], axis=1)

    wrapped = wrap(graph)  # the server halves a batch a GPU has no memory for
    head = as_outputs(loaded, lambda answers: answers)

    def outputs(x: np.ndarray) -> np.ndarray:
        answers = wrapped(x)
        tail = answers[:, -width:].astype("float32", copy=False)
        return np.concatenate([head(answers[:, :-width]), tail], axis=1)

    return outputs


def _without_embeddings(answers: np.ndarray, loaded: LoadedVersion) -> np.ndarray:
    """The outputs of ``embedding_outputs``' answers (C-contiguous: a server answers
    straight from the array)."""
    width = loaded.embedding.dims if loaded.embedding else 0
    return np.ascontiguousarray(answers[:, :-width] if width else answers)


@dataclass(frozen=True)
class Predictor:
    loaded: LoadedVersion
    outputs: Outputs
    """Probabilities or values, unchecked: the server checks each request's own rows after
    the batch, so one request's NaN fails that request only."""
    embedded: Outputs | None = None
    """An image or text version's outputs with its embeddings in the last columns
    (``embedding_outputs``), for callers that log them; None for other versions."""

    @classmethod
    def create(
        cls,
        loaded: LoadedVersion,
        threads: int | None = None,
        *,
        device: str = "cpu",
        wrap: Callable[[Outputs], Outputs] = lambda predict: predict,
    ) -> Predictor:
        """On the version's backend and ``device``, ``threads`` intra-op threads; ``wrap``
        wraps the graph (the server halves a batch a GPU has no memory for)."""
        embedded = embedding_outputs(loaded, threads, device=device, wrap=wrap)
        if embedded is not None:  # one session answers both
            return cls(loaded, lambda x: _without_embeddings(embedded(x), loaded), embedded)
        graph = wrap(make_predictor(loaded, threads, device))
        return cls(loaded, as_outputs(loaded, graph))

    def __call__(self, x: np.ndarray, *, first_row: int = 0) -> np.ndarray:
        """Outputs of ``x``, or ``NonFiniteOutput`` naming its bad rows from ``first_row``."""
        return refuse_non_finite(self.outputs(x), first_row=first_row)

    def with_embeddings(
        self, x: np.ndarray, *, first_row: int = 0
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Outputs of ``x`` as ``__call__`` checks them, and in the same pass an image or
        text version's embeddings (None for other versions)."""
        if self.embedded is None:
            return self(x, first_row=first_row), None
        both = self.embedded(x)
        outputs = _without_embeddings(both, self.loaded)
        return refuse_non_finite(outputs, first_row=first_row), both[:, -self.embedding_width :]

    @property
    def embedding_width(self) -> int:
        """Columns of embedding after the outputs in ``embedded``'s answers; 0: none."""
        return self.loaded.embedding.dims if self.embedded and self.loaded.embedding else 0

    def answers(self, outputs: np.ndarray) -> np.ndarray:
        """What is answered: the labels as they were in the training data (strings stay
        strings) as the version decides, or a regressor's values (N,)."""
        if self.loaded.is_regression:
            values: np.ndarray = outputs.reshape(-1)
            return values
        labels = np.asarray(self.loaded.classes, dtype=object)
        answered: np.ndarray = labels[decide(outputs, self.loaded.decision)]
        return answered
