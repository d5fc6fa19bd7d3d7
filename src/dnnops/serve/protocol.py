"""The Open Inference Protocol v2 on the wire: JSON tensors and the binary tensor extension.

A request body is a JSON header, optionally followed by raw tensor bytes when the
``Inference-Header-Content-Length`` header says where the JSON ends; each input with
``parameters.binary_data_size`` takes its bytes from there, in order. Responses mirror
it: outputs asked for with ``binary_data`` (or all, with ``binary_data_output``) are
appended as raw bytes. Anything inconsistent is a ``BadRequest`` (HTTP 400).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from dnnops.inference.inputs import InferInput
from dnnops.serve.errors import BadRequest

DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("bool"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype("object"),
}
MAX_ELEMENTS = 64 * 1024 * 1024


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    inputs: list[InferInput]
    binary_outputs: set[str] = field(default_factory=set)
    all_binary: bool = False
    requested: list[str] | None = None


@dataclass(frozen=True)
class OutputTensor:
    name: str
    datatype: str
    array: np.ndarray


def parse_infer(body: bytes, header_length: int | None) -> InferRequest:
    """Decode a v2 infer request; raise ``BadRequest`` naming what is wrong."""
    if header_length is not None and not 0 < header_length <= len(body):
        raise BadRequest(
            f"Inference-Header-Content-Length {header_length} does not fit "
            f"a body of {len(body)} bytes"
        )
    head, blob = (body[:header_length], body[header_length:]) if header_length else (body, b"")
    try:
        payload = orjson.loads(head)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("inputs"), list)
        or not payload["inputs"]
    ):
        raise BadRequest("the request needs 'inputs': a non-empty list of tensors")
    inputs, offset = [], 0
    for index, spec in enumerate(payload["inputs"]):
        tensor, offset = _parse_input(spec, index, blob, offset=offset)
        inputs.append(tensor)
    if offset != len(blob):
        raise BadRequest(f"{len(blob) - offset} bytes of binary data were not claimed by any input")
    parameters = payload.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise BadRequest("parameters must be an object")
    outputs = payload.get("outputs")
    binary, requested = _requested_outputs(outputs)
    request_id = payload.get("id")
    return InferRequest(
        id=str(request_id) if request_id is not None else None,
        inputs=inputs,
        binary_outputs=binary,
        all_binary=bool(isinstance(parameters, dict) and parameters.get("binary_data_output")),
        requested=requested,
    )


def _parse_input(spec: Any, index: int, blob: bytes, *, offset: int) -> tuple[InferInput, int]:
    if not isinstance(spec, dict):
        raise BadRequest(f"inputs[{index}] must be an object with name, shape, datatype and data")
    name = spec.get("name")
    datatype = spec.get("datatype")
    shape = spec.get("shape")
    if not isinstance(name, str) or not name:
        raise BadRequest(f"inputs[{index}].name must be a non-empty string")
    if datatype not in DATATYPES:
        raise BadRequest(
            f"inputs[{index}].datatype {datatype!r} is not one of {', '.join(DATATYPES)}"
        )
    shape = _checked_shape(shape, f"inputs[{index}].shape")
    parameters = spec.get("parameters") or {}
    size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
    if size is not None:
        if not isinstance(size, int) or size < 0 or offset + size > len(blob):
            raise BadRequest(
                f"inputs[{index}].parameters.binary_data_size {size!r} runs past the body"
            )
        array = _from_binary(blob[offset : offset + size], datatype, shape, index=index)
        return InferInput(name, datatype, array), offset + size
    if "data" not in spec:
        raise BadRequest(f"inputs[{index}] has neither 'data' nor parameters.binary_data_size")
    return InferInput(
        name, datatype, _from_json(spec["data"], datatype, shape, index=index)
    ), offset


def _checked_shape(shape: Any, where: str) -> list[int]:
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) for d in shape
    ):
        raise BadRequest(f"{where} must be a list of integers")
    if any(d < 0 for d in shape):
        raise BadRequest(f"{where} {shape} has a negative dimension")
    if math.prod(shape) > MAX_ELEMENTS:
        raise BadRequest(f"{where} {shape} holds more than {MAX_ELEMENTS} elements")
    return shape


NUMBERS = (int, float)
NUMBERS_AND_BOOLS = (int, float, bool)


def _from_json(data: Any, datatype: str, shape: list[int], *, index: int) -> np.ndarray:
    flat = _flatten(data)
    if len(flat) != math.prod(shape):
        raise BadRequest(
            f"inputs[{index}] has {len(flat)} values but shape {shape} needs {math.prod(shape)}"
        )
    if datatype == "BYTES":
        values = [v.encode() if isinstance(v, str) else v for v in flat]
        if not all(isinstance(v, bytes) for v in values):
            raise BadRequest(f"inputs[{index}] is BYTES but holds non-string values")
        return np.array(values, dtype=object).reshape(shape)
    allowed = NUMBERS_AND_BOOLS if datatype == "BOOL" else NUMBERS
    if not all(type(v) in allowed for v in flat):  # JSON gives exactly these types
        if any(type(v) is bool for v in flat):
            raise BadRequest(
                f"inputs[{index}] is {datatype} but holds true/false: send numbers, or "
                "declare the tensor BOOL"
            )
        raise BadRequest(f"inputs[{index}] is {datatype} but holds non-numeric values")
    try:
        return np.array(flat, dtype=DATATYPES[datatype]).reshape(shape)
    except (OverflowError, ValueError) as exc:
        raise BadRequest(f"inputs[{index}] values do not fit {datatype}: {exc}") from None


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise BadRequest("tensor data must be a list (flat or nested)")
    if not data or not isinstance(data[0], list):
        if any(isinstance(v, list | dict) for v in data):
            raise BadRequest("tensor data mixes lists and values at one level")
        return data
    out: list[Any] = []
    for item in data:
        out.extend(_flatten(item))
    return out


def _from_binary(raw: bytes, datatype: str, shape: list[int], *, index: int) -> np.ndarray:
    count = math.prod(shape)
    if datatype == "BYTES":
        return np.array(_split_bytes(raw, count, index), dtype=object).reshape(shape)
    dtype = DATATYPES[datatype]
    if len(raw) != count * dtype.itemsize:
        raise BadRequest(
            f"inputs[{index}] has {len(raw)} bytes but {count} {datatype} values "
            f"need {count * dtype.itemsize}"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def _split_bytes(raw: bytes, count: int, index: int) -> list[bytes]:
    """BYTES elements are each a 4-byte little-endian length, then the bytes."""
    out, position = [], 0
    for _ in range(count):
        if position + 4 > len(raw):
            raise BadRequest(f"inputs[{index}] BYTES data ends inside an element length")
        (length,) = struct.unpack_from("<I", raw, position)
        position += 4
        if position + length > len(raw):
            raise BadRequest(f"inputs[{index}] BYTES element runs past its data")
        out.append(raw[position : position + length])
        position += length
    if position != len(raw):
        raise BadRequest(f"inputs[{index}] BYTES data has {len(raw) - position} trailing bytes")
    return out


def _requested_outputs(outputs: Any) -> tuple[set[str], list[str] | None]:
    if outputs is None:
        return set(), None
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
    ):
        raise BadRequest("'outputs' must be a list of objects with a 'name'")
    for index, output in enumerate(outputs):
        if not isinstance(output.get("parameters") or {}, dict):
            raise BadRequest(f"outputs[{index}].parameters must be an object")
    binary = {o["name"] for o in outputs if (o.get("parameters") or {}).get("binary_data")}
    return binary, [o["name"] for o in outputs]


def encode_response(
    model: str,
    version: str,
    request: InferRequest,
    *,
    outputs: Sequence[OutputTensor],
    extra: dict[str, Any] | None = None,
) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when binary outputs follow it."""
    chosen = [o for o in outputs if request.requested is None or o.name in request.requested]
    unknown = set(request.requested or []) - {o.name for o in outputs}
    if unknown:
        raise BadRequest(
            f"unknown outputs {sorted(unknown)}; this model has {[o.name for o in outputs]}"
        )
    entries, blobs = [], []
    for output in chosen:
        entry: dict[str, Any] = {
            "name": output.name,
            "datatype": output.datatype,
            "shape": list(output.array.shape),
        }
        if request.all_binary or output.name in request.binary_outputs:
            raw = _to_binary(output)
            entry["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            entry["data"] = _to_json_data(output)
        entries.append(entry)
    header: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": entries}
    if request.id is not None:
        header["id"] = request.id
    if extra:
        header["parameters"] = extra
    head = orjson.dumps(header, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return head, None
    return head + b"".join(blobs), len(head)


def _to_binary(output: OutputTensor) -> bytes:
    if output.datatype == "BYTES":
        return b"".join(
            struct.pack("<I", len(v)) + v for v in (_as_bytes(x) for x in output.array.ravel())
        )
    return np.ascontiguousarray(output.array, dtype=DATATYPES[output.datatype]).tobytes()


def _to_json_data(output: OutputTensor) -> Any:
    if output.datatype == "BYTES":
        return [_as_bytes(x).decode("utf-8", "replace") for x in output.array.ravel()]
    return output.array.ravel()  # orjson writes numpy arrays natively


def _as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()
