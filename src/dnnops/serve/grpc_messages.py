"""The Open Inference Protocol's gRPC messages (package ``inference``, service
``GRPCInferenceService``), as KServe and Triton define them on the wire: the same message
names, field numbers and types, so ``tritonclient.grpc`` and KServe's clients talk to
dnnops unchanged. Built from a descriptor in code, not generated files: nothing to
regenerate, and only the messages dnnops answers."""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "inference"
SERVICE = f"{PACKAGE}.GRPCInferenceService"
F = descriptor_pb2.FieldDescriptorProto

_SCALARS = {
    "bool": F.TYPE_BOOL,
    "int32": F.TYPE_INT32,
    "int64": F.TYPE_INT64,
    "uint32": F.TYPE_UINT32,
    "uint64": F.TYPE_UINT64,
    "float": F.TYPE_FLOAT,
    "double": F.TYPE_DOUBLE,
    "string": F.TYPE_STRING,
    "bytes": F.TYPE_BYTES,
}

# message -> [(field, number, type, repeated)]; a type not in _SCALARS names a message
# (".inference.X"); "map:X" is a map<string, X>.
_MESSAGES: dict[str, list[tuple[str, int, str, bool]]] = {
    "ServerLiveRequest": [],
    "ServerLiveResponse": [("live", 1, "bool", False)],
    "ServerReadyRequest": [],
    "ServerReadyResponse": [("ready", 1, "bool", False)],
    "ModelReadyRequest": [("name", 1, "string", False), ("version", 2, "string", False)],
    "ModelReadyResponse": [("ready", 1, "bool", False)],
    "ServerMetadataRequest": [],
    "ServerMetadataResponse": [
        ("name", 1, "string", False),
        ("version", 2, "string", False),
        ("extensions", 3, "string", True),
    ],
    "ModelMetadataRequest": [("name", 1, "string", False), ("version", 2, "string", False)],
    "TensorMetadata": [
        ("name", 1, "string", False),
        ("datatype", 2, "string", False),
        ("shape", 3, "int64", True),
    ],
    "ModelMetadataResponse": [
        ("name", 1, "string", False),
        ("versions", 2, "string", True),
        ("platform", 3, "string", False),
        ("inputs", 4, "ModelMetadataResponse.TensorMetadata", True),
        ("outputs", 5, "ModelMetadataResponse.TensorMetadata", True),
    ],
    "InferParameter": [
        ("bool_param", 1, "bool", False),
        ("int64_param", 2, "int64", False),
        ("string_param", 3, "string", False),
    ],
    "InferTensorContents": [
        ("bool_contents", 1, "bool", True),
        ("int_contents", 2, "int32", True),
        ("int64_contents", 3, "int64", True),
        ("uint_contents", 4, "uint32", True),
        ("uint64_contents", 5, "uint64", True),
        ("fp32_contents", 6, "float", True),
        ("fp64_contents", 7, "double", True),
        ("bytes_contents", 8, "bytes", True),
    ],
    "InferInputTensor": [
        ("name", 1, "string", False),
        ("datatype", 2, "string", False),
        ("shape", 3, "int64", True),
        ("parameters", 4, "map:InferParameter", True),
        ("contents", 5, "InferTensorContents", False),
    ],
    "InferRequestedOutputTensor": [
        ("name", 1, "string", False),
        ("parameters", 2, "map:InferParameter", True),
    ],
    "ModelInferRequest": [
        ("model_name", 1, "string", False),
        ("model_version", 2, "string", False),
        ("id", 3, "string", False),
        ("parameters", 4, "map:InferParameter", True),
        ("inputs", 5, "ModelInferRequest.InferInputTensor", True),
        ("outputs", 6, "ModelInferRequest.InferRequestedOutputTensor", True),
        ("raw_input_contents", 7, "bytes", True),
    ],
    "InferOutputTensor": [
        ("name", 1, "string", False),
        ("datatype", 2, "string", False),
        ("shape", 3, "int64", True),
        ("parameters", 4, "map:InferParameter", True),
        ("contents", 5, "InferTensorContents", False),
    ],
    "ModelInferResponse": [
        ("model_name", 1, "string", False),
        ("model_version", 2, "string", False),
        ("id", 3, "string", False),
        ("parameters", 4, "map:InferParameter", True),
        ("outputs", 5, "ModelInferResponse.InferOutputTensor", True),
        ("raw_output_contents", 6, "bytes", True),
    ],
}
_NESTED = {  # nested message -> its parent, as the protocol nests them
    "TensorMetadata": "ModelMetadataResponse",
    "InferInputTensor": "ModelInferRequest",
    "InferRequestedOutputTensor": "ModelInferRequest",
    "InferOutputTensor": "ModelInferResponse",
}
_ONEOF = {"InferParameter": "parameter_choice"}
RPCS = {
    "ServerLive": ("ServerLiveRequest", "ServerLiveResponse"),
    "ServerReady": ("ServerReadyRequest", "ServerReadyResponse"),
    "ModelReady": ("ModelReadyRequest", "ModelReadyResponse"),
    "ServerMetadata": ("ServerMetadataRequest", "ServerMetadataResponse"),
    "ModelMetadata": ("ModelMetadataRequest", "ModelMetadataResponse"),
    "ModelInfer": ("ModelInferRequest", "ModelInferResponse"),
}


def _message(name: str) -> descriptor_pb2.DescriptorProto:
    message = descriptor_pb2.DescriptorProto(name=name)
    path = f"{_NESTED[name]}.{name}" if name in _NESTED else name
    if name in _ONEOF:
        message.oneof_decl.add(name=_ONEOF[name])
    for field_name, number, kind, repeated in _MESSAGES[name]:
        field = message.field.add(name=field_name, number=number)
        field.label = F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL
        if name in _ONEOF:
            field.oneof_index = 0
        if kind.startswith("map:"):
            entry = message.nested_type.add(name=_entry_name(field_name))
            entry.options.map_entry = True
            entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
            entry.field.add(
                name="value",
                number=2,
                type=F.TYPE_MESSAGE,
                type_name=f".{PACKAGE}.{kind[4:]}",
                label=F.LABEL_OPTIONAL,
            )
            field.type, field.type_name = F.TYPE_MESSAGE, f".{PACKAGE}.{path}.{entry.name}"
        elif kind in _SCALARS:
            field.type = _SCALARS[kind]
        else:
            field.type, field.type_name = F.TYPE_MESSAGE, f".{PACKAGE}.{kind}"
    for child, parent in _NESTED.items():
        if parent == name:
            message.nested_type.append(_message(child))
    return message


def _entry_name(field_name: str) -> str:
    return "".join(part.title() for part in field_name.split("_")) + "Entry"


def _file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(
        name="dnnops/open_inference_v2.proto", package=PACKAGE, syntax="proto3"
    )
    for name in _MESSAGES:
        if name not in _NESTED:
            proto.message_type.append(_message(name))
    service = proto.service.add(name="GRPCInferenceService")
    for rpc, (request, response) in RPCS.items():
        service.method.add(
            name=rpc, input_type=f".{PACKAGE}.{request}", output_type=f".{PACKAGE}.{response}"
        )
    return proto


def _classes() -> dict[str, Any]:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file())
    out = {}
    for name in _MESSAGES:
        full = f"{PACKAGE}.{_NESTED[name]}.{name}" if name in _NESTED else f"{PACKAGE}.{name}"
        out[name] = message_factory.GetMessageClass(pool.FindMessageTypeByName(full))
    return out


MESSAGES = _classes()
"""Message name -> its class (``MESSAGES["ModelInferRequest"]()``)."""
