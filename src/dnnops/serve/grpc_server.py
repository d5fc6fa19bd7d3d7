"""The Open Inference Protocol over gRPC (KServe's and Triton's ``GRPCInferenceService``),
beside HTTP on ``serve.grpc_port``.

``ModelInfer`` becomes the binary HTTP request it is equivalent to (a JSON header and the
raw tensors) and goes through the same hot path: routing (canary, shadow, sticky key),
validation and limits, the batcher, the prediction log, the metrics. The gRPC deadline
bounds the request as ``serve.timeout`` does; a cancelled call withdraws its rows from the
batcher. HTTP answers become gRPC status codes with the same message."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import numpy as np
import orjson

from dnnops.errors import DnnopsError
from dnnops.serve.errors import BadRequest, HttpError, PayloadTooLarge, http_error_of
from dnnops.serve.grpc_messages import MESSAGES, RPCS, SERVICE
from dnnops.serve.hot_path import infer_answer, runtime_of
from dnnops.serve.http import Message, Receive
from dnnops.serve.state import ServerState
from dnnops.version import __version__

STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}
CONTENTS = {  # datatype -> (InferTensorContents field, numpy type of the raw bytes)
    "BOOL": ("bool_contents", "bool"),
    "INT8": ("int_contents", "<i1"),
    "INT16": ("int_contents", "<i2"),
    "INT32": ("int_contents", "<i4"),
    "INT64": ("int64_contents", "<i8"),
    "UINT8": ("uint_contents", "<u1"),
    "UINT16": ("uint_contents", "<u2"),
    "UINT32": ("uint_contents", "<u4"),
    "UINT64": ("uint64_contents", "<u8"),
    "FP32": ("fp32_contents", "<f4"),
    "FP64": ("fp64_contents", "<f8"),
}
MAX_MESSAGE = 64 * 1024 * 1024


class CallRequest:
    """A gRPC call as the hot path reads an HTTP request: headers from its metadata, the
    body built from the message, and whether the caller is gone."""

    def __init__(self, body: bytes, header_length: int, context: grpc.aio.ServicerContext) -> None:
        self._body = body
        metadata = context.invocation_metadata() or ()
        self._headers = {k.lower(): v for k, v in metadata if isinstance(v, str)}
        self._headers["inference-header-content-length"] = str(header_length)
        self._context = context

    def header(self, name: str) -> str | None:
        return self._headers.get(name)

    async def body(self, limit: int) -> bytes:
        if len(self._body) > limit:
            raise PayloadTooLarge(
                f"the request has {len(self._body)} bytes; the limit is {limit} "
                "(serve.max_body_bytes)"
            )
        return self._body

    def client_gone(self) -> Callable[[], bool] | None:
        return lambda: self._context.done() or self._context.cancelled()

    @property
    def receive(self) -> Receive:
        return _never  # client_gone() is the watch


async def _never() -> Message:
    await asyncio.Event().wait()
    return {"type": "http.disconnect"}


def http_body(request: Any) -> tuple[bytes, int]:
    """A ``ModelInferRequest`` as the binary v2 body it is equivalent to: every tensor raw
    after a JSON header, every output asked for in binary."""
    raws = list(request.raw_input_contents)
    if raws and len(raws) != len(request.inputs):
        raise BadRequest(
            f"raw_input_contents has {len(raws)} tensors for {len(request.inputs)} inputs"
        )
    inputs, chunks = [], []
    for index, tensor in enumerate(request.inputs):
        data = raws[index] if raws else _raw_of(tensor, index)
        inputs.append(
            {
                "name": tensor.name,
                "shape": list(tensor.shape),
                "datatype": tensor.datatype,
                "parameters": {**_parameters(tensor.parameters), "binary_data_size": len(data)},
            }
        )
        chunks.append(data)
    header: dict[str, Any] = {"inputs": inputs, "parameters": {"binary_data_output": True}}
    if request.id:
        header["id"] = request.id
    if request.outputs:
        header["outputs"] = [
            {"name": o.name, "parameters": {**_parameters(o.parameters), "binary_data": True}}
            for o in request.outputs
        ]
    encoded = orjson.dumps(header)
    return encoded + b"".join(chunks), len(encoded)


def _raw_of(tensor: Any, index: int) -> bytes:
    contents = tensor.contents
    if tensor.datatype == "BYTES":
        return b"".join(struct.pack("<I", len(v)) + v for v in contents.bytes_contents)
    found = CONTENTS.get(tensor.datatype)
    if found is None:
        raise BadRequest(f"inputs[{index}]: datatype {tensor.datatype!r} needs raw contents")
    values = getattr(contents, found[0])
    return np.asarray(values, dtype=found[1]).tobytes()


def _parameters(parameters: Any) -> dict[str, Any]:
    out = {}
    for key, value in parameters.items():
        chosen = value.WhichOneof("parameter_choice")
        if chosen:
            out[key] = getattr(value, chosen)
    return out


def infer_response(body: bytes, header_length: int) -> Any:
    """The binary v2 answer as a ``ModelInferResponse`` (raw output contents)."""
    header = orjson.loads(body[:header_length])
    response = MESSAGES["ModelInferResponse"](
        model_name=header.get("model_name", ""),
        model_version=str(header.get("model_version", "")),
        id=str(header.get("id") or ""),
    )
    position = header_length
    for output in header.get("outputs", []):
        size = int(output.get("parameters", {}).get("binary_data_size", 0))
        tensor = response.outputs.add(
            name=output["name"], datatype=output["datatype"], shape=output["shape"]
        )
        for key, value in output.get("parameters", {}).items():
            if key != "binary_data_size":
                _set(tensor.parameters[key], value)
        response.raw_output_contents.append(body[position : position + size])
        position += size
    for key, value in (header.get("parameters") or {}).items():
        _set(response.parameters[key], value)
    return response


def _set(parameter: Any, value: Any) -> None:
    if isinstance(value, bool):
        parameter.bool_param = value
    elif isinstance(value, int):
        parameter.int64_param = value
    elif isinstance(value, list):  # prediction_ids: what feedback names the predictions by
        parameter.string_param = ",".join(str(v) for v in value)
    else:
        parameter.string_param = value if isinstance(value, str) else orjson.dumps(value).decode()


class Servicer:
    def __init__(self, state: ServerState) -> None:
        self.state = state

    async def ServerLive(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        return MESSAGES["ServerLiveResponse"](live=True)

    async def ServerReady(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        return MESSAGES["ServerReadyResponse"](ready=self.state.lifecycle.ready)

    async def ServerMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        return MESSAGES["ServerMetadataResponse"](
            name="dnnops", version=__version__, extensions=["binary_tensor_data"]
        )

    async def ModelReady(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        version = request.version or None
        runtime = await _or_abort(
            context, lambda: runtime_of(self.state, request.name, version, need_ready=False)
        )
        return MESSAGES["ModelReadyResponse"](ready=runtime.ready and self.state.lifecycle.ready)

    async def ModelMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        runtime = await _or_abort(
            context, lambda: runtime_of(self.state, request.name, request.version or None)
        )
        found = runtime.metadata()
        answer = MESSAGES["ModelMetadataResponse"](
            name=found["name"], versions=found["versions"], platform=found["platform"]
        )
        for part in ("inputs", "outputs"):
            for tensor in found[part]:
                getattr(answer, part).add(
                    name=tensor["name"], datatype=tensor["datatype"], shape=tensor["shape"]
                )
        return answer

    async def ModelInfer(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        try:
            body, header_length = http_body(request)
        except HttpError as error:
            await context.abort(STATUS.get(error.status, grpc.StatusCode.INTERNAL), error.message)
        remaining = context.time_remaining()
        answer = await infer_answer(
            self.state,
            CallRequest(body, header_length, context),
            request.model_name,
            version=request.model_version or None,
            deadline_s=remaining,
        )
        if answer.status != 200:
            message = orjson.loads(answer.body).get("error", "") if answer.body else ""
            await context.abort(STATUS.get(answer.status, grpc.StatusCode.INTERNAL), message)
        length = answer.headers.get("Inference-Header-Content-Length")
        return infer_response(answer.body, int(length) if length else len(answer.body))


async def _or_abort(context: grpc.aio.ServicerContext, find: Callable[[], Any]) -> Any:
    try:
        return find()
    except HttpError as error:
        await context.abort(STATUS.get(error.status, grpc.StatusCode.INTERNAL), error.message)
    except DnnopsError as exc:
        refused = http_error_of(exc)
        await context.abort(STATUS.get(refused.status, grpc.StatusCode.INTERNAL), refused.message)


def _handler(method: Callable[[Any, Any], Awaitable[Any]], rpc: str) -> grpc.RpcMethodHandler:
    request, response = RPCS[rpc]
    return grpc.unary_unary_rpc_method_handler(
        method,
        request_deserializer=MESSAGES[request].FromString,
        response_serializer=MESSAGES[response].SerializeToString,
    )


async def start_grpc(state: ServerState, host: str, port: int) -> grpc.aio.Server:
    """The gRPC server on ``host:port`` (TLS with ``serve.tls``), started."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
        ]
    )
    servicer = Servicer(state)
    handlers = {rpc: _handler(getattr(servicer, rpc), rpc) for rpc in RPCS}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    address = f"{host}:{port}"
    tls = state.serve.tls
    if tls.enabled and tls.certfile is not None and tls.keyfile is not None:
        credentials = grpc.ssl_server_credentials(
            [(tls.keyfile.read_bytes(), tls.certfile.read_bytes())]
        )
        server.add_secure_port(address, credentials)
    else:
        server.add_insecure_port(address)
    await server.start()
    return server
