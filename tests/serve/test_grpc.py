"""The Open Inference Protocol over gRPC: ``tritonclient.grpc``, unchanged, passes the
checks its HTTP client passes (liveness, readiness, metadata, inference) against the same
server, gets the same answers as HTTP for the same rows, and gets gRPC status codes for
the errors HTTP names; the predictions are logged and answer feedback like HTTP's."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
from sklearn.datasets import load_digits
from tritonclient.utils import InferenceServerException

from dnnops.serve.grpc_messages import MESSAGES, SERVICE
from tests.serve.conftest import Server, start_server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def both(trained_home: Path) -> Iterator[tuple[Server, str]]:
    port = free_port()
    running = start_server(trained_home, "--model", "digits@production", "--grpc-port", str(port))
    yield running, f"127.0.0.1:{port}"
    running.stop()


def test_tritonclient_grpc_checks_health_metadata_and_infers_as_http_does(
    both: tuple[Server, str],
) -> None:
    server, address = both
    client = triton_grpc.InferenceServerClient(url=address)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("digits")
    metadata = client.get_model_metadata("digits", as_json=True)
    assert metadata["inputs"][0]["name"] == "input"
    assert [int(d) for d in metadata["inputs"][0]["shape"]] == [-1, 64]
    assert {o["name"] for o in metadata["outputs"]} == {"label", "probabilities"}

    rows = load_digits().data[:5].astype("float32")
    tensor = triton_grpc.InferInput("input", list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows)
    answer = client.infer("digits", [tensor])
    labels = answer.as_numpy("label")
    probabilities = answer.as_numpy("probabilities")
    assert probabilities.shape == (5, 10)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        v1 = http.post("/v1/models/digits:predict", json={"instances": rows.tolist()}).json()
        assert labels.tolist() == v1["predictions"]
        assert np.allclose(probabilities, np.array(v1["probabilities"]), atol=1e-6)
        ids = answer.get_response().parameters["prediction_ids"].string_param.split(",")
        assert len(ids) == 5
        traced = http.get(f"/v1/predictions/{ids[0]}")
        assert traced.status_code == 200 and traced.json()["prediction"]["protocol"] == "v2"
        feedback = {"labels": [{"prediction_id": ids[0], "label": int(labels[0])}]}
        assert http.post("/v1/feedback", json=feedback).json()["accepted"] == 1


def test_errors_are_grpc_status_codes_with_the_http_message(both: tuple[Server, str]) -> None:
    _, address = both
    client = triton_grpc.InferenceServerClient(url=address)
    tensor = triton_grpc.InferInput("input", [1, 63], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 63), dtype="float32"))
    with pytest.raises(InferenceServerException) as wrong_shape:
        client.infer("digits", [tensor])
    assert wrong_shape.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "64" in wrong_shape.value.message()
    with pytest.raises(InferenceServerException) as unknown:
        client.get_model_metadata("nope")
    assert unknown.value.status() == "StatusCode.NOT_FOUND"


def test_typed_contents_are_accepted_as_raw_ones_are(both: tuple[Server, str]) -> None:
    """KServe's clients may send ``fp32_contents`` instead of raw bytes."""
    _, address = both
    rows = load_digits().data[:2].astype("float32")
    request = MESSAGES["ModelInferRequest"](model_name="digits", id="req-7")
    tensor = request.inputs.add(name="input", datatype="FP32", shape=[2, 64])
    tensor.contents.fp32_contents.extend(rows.ravel().tolist())

    async def call() -> object:
        async with grpc.aio.insecure_channel(address) as channel:
            infer = channel.unary_unary(
                f"/{SERVICE}/ModelInfer",
                request_serializer=MESSAGES["ModelInferRequest"].SerializeToString,
                response_deserializer=MESSAGES["ModelInferResponse"].FromString,
            )
            return await infer(request, timeout=30)

    response = asyncio.run(call())
    assert response.id == "req-7" and response.model_name == "digits"  # type: ignore[attr-defined]
    names = [o.name for o in response.outputs]  # type: ignore[attr-defined]
    probabilities = response.raw_output_contents[names.index("probabilities")]  # type: ignore[attr-defined]
    assert np.frombuffer(probabilities, dtype="<f4").reshape(2, 10).sum(axis=1) == pytest.approx(
        1.0, abs=1e-4
    )
