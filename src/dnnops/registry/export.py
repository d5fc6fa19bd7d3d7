"""Self-contained serving graphs: ONNX export checked against torch, and dynamic INT8.

The legacy TorchScript exporter is used on purpose: for these architectures it is exact
and takes ~0.1 s, where the dynamo exporter takes 1-2 s and needs onnxscript. Its
deprecation warning is silenced here only; parity with torch is checked on every export.
"""

from __future__ import annotations

import io
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from dnnops.errors import ModelError
from dnnops.registry.onnx_runner import EMBEDDING, INPUT, OUTPUT, OnnxRunner

__all__ = ["EMBEDDING", "INPUT", "OUTPUT", "check_parity", "export_onnx", "quantize_int8"]
PARITY_TOLERANCE = 1e-4


def export_onnx(
    model: nn.Module, input_shape: tuple[int, ...], outputs: tuple[str, ...] = (OUTPUT,)
) -> bytes:
    """The model as ONNX bytes: input ``input`` (batch, *input_shape), output ``logits``
    (and ``embedding`` after it, for an ``EmbeddingTap``)."""
    model = model.eval()
    example = torch.zeros(2, *input_shape)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            buffer,  # type: ignore[arg-type]  # file-like objects work; the stub says paths
            input_names=[INPUT],
            output_names=list(outputs),
            dynamic_axes={name: {0: "batch"} for name in (INPUT, *outputs)},
            opset_version=17,
            dynamo=False,
        )
    data = buffer.getvalue()
    onnx.checker.check_model(onnx.load_from_string(data))
    return data


def parity(onnx_bytes: bytes, model: nn.Module, x: np.ndarray) -> tuple[float, float]:
    """Max absolute difference between ONNX and torch outputs on ``x``, and the largest
    output magnitude (float32 keeps about 7 digits of it)."""
    with torch.inference_mode():
        expected = model.eval()(torch.from_numpy(x)).numpy()
    difference = float(np.abs(OnnxRunner(onnx_bytes)(x) - expected).max())
    return difference, float(np.abs(expected).max(initial=0.0))


def check_parity(onnx_bytes: bytes, model: nn.Module, x: np.ndarray) -> float:
    """The max absolute difference, refused beyond ``PARITY_TOLERANCE`` relative to the
    outputs' magnitude (at least 1): logits near 1 and a regression's prices in the
    thousands are held to the same number of agreeing digits."""
    difference, magnitude = parity(onnx_bytes, model, x)
    allowed = PARITY_TOLERANCE * max(1.0, magnitude)
    if not difference <= allowed:
        raise ModelError(
            f"the ONNX export differs from torch by {difference:.2e} (> {allowed:.2g}) "
            "on the test set; the architecture uses an operation ONNX does not reproduce"
        )
    return difference


def quantize_int8(onnx_bytes: bytes) -> bytes:
    """Dynamic INT8 quantization of weights (activations quantized at run time)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "model.onnx", Path(folder) / "model.int8.onnx"
        source.write_bytes(onnx_bytes)
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)  # "consider pre-processing": advice, not a problem
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
        finally:
            logging.disable(previous)
        return target.read_bytes()


def onnx_signature(onnx_bytes: bytes) -> tuple[list[int | None], list[int | None]]:
    """Input and output shapes of a graph (None for symbolic dimensions such as the batch)."""
    graph = onnx.load_from_string(onnx_bytes).graph
    if len(graph.input) != 1:
        raise ModelError(
            f"dnnops serves models with one input tensor; this graph has {len(graph.input)}"
        )

    def dims(value: onnx.ValueInfoProto) -> list[int | None]:
        return [
            d.dim_value if d.HasField("dim_value") else None
            for d in value.type.tensor_type.shape.dim
        ]

    return dims(graph.input[0]), dims(graph.output[0])


def onnx_input_name(onnx_bytes: bytes) -> str:
    """The graph's input name: what its users' clients already send (v2 ``inputs[].name``)."""
    return str(onnx.load_from_string(onnx_bytes).graph.input[0].name)
