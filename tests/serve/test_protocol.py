"""Conformance with the real ``tritonclient.http`` client, and the plain v1 routes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import sklearn.datasets
import tritonclient.http as triton

from dnnops.data.preprocess import apply_preprocessing
from dnnops.home import resolve_home
from dnnops.registry.loader import load_version, make_predictor
from dnnops.registry.open import open_registry
from tests.serve.conftest import Server


def _digits(rows: int = 20) -> np.ndarray:
    return sklearn.datasets.load_digits().data[:rows].astype("float32")


def _expected(home: Path, x: np.ndarray) -> np.ndarray:
    """The registered model run in-process: what the server must answer."""
    registry = open_registry(resolve_home(home))
    loaded = load_version(registry, registry.resolve("digits", "production"))
    logits = make_predictor(loaded)(apply_preprocessing(loaded.preprocessor, x))
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
    return probabilities


def test_tritonclient_health_and_metadata(server: Server) -> None:
    client = triton.InferenceServerClient(server.address)
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("digits")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    metadata = client.get_model_metadata("digits")
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 64]}]
    assert {o["name"] for o in metadata["outputs"]} == {"label", "probabilities"}
    assert not client.is_model_ready("nope")
    client.close()


def test_tritonclient_binary_and_json_infer_match_the_model(server: Server) -> None:
    x = _digits()
    expected = _expected(server.home, x)
    client = triton.InferenceServerClient(server.address)
    for binary in (True, False):
        tensor = triton.InferInput("input", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x, binary_data=binary)
        outputs = [
            triton.InferRequestedOutput("probabilities", binary_data=binary),
            triton.InferRequestedOutput("label", binary_data=binary),
        ]
        result = client.infer("digits", [tensor], outputs=outputs)
        np.testing.assert_allclose(result.as_numpy("probabilities"), expected, atol=1e-5)
        assert result.as_numpy("label").tolist() == expected.argmax(axis=1).tolist()
        ids = result.get_response()["parameters"]["prediction_ids"]
        assert len(ids) == len(x) and len(set(ids)) == len(x)
    client.close()


def test_versioned_route_and_v1_predict(server: Server) -> None:
    x = _digits(3)
    with server.client() as http:
        body = {
            "inputs": [{"name": "input", "shape": [3, 64], "datatype": "FP32", "data": x.tolist()}]
        }
        response = http.post("/v2/models/digits/versions/1/infer", json=body)
        assert response.status_code == 200
        assert response.headers["x-model-version"] == "1"
        assert len(response.headers["x-prediction-id"].split(",")) == 3
        v1 = http.post("/v1/models/digits:predict", json={"instances": x.tolist()})
        assert v1.status_code == 200
        payload = v1.json()
        assert payload["predictions"] == _expected(server.home, x).argmax(axis=1).tolist()
        assert payload["model_version"] == "1" and len(payload["prediction_ids"]) == 3
        keyed = [{f"pixel_{i // 8}_{i % 8}": float(v) for i, v in enumerate(row)} for row in x]
        assert (
            http.post("/v1/models/digits:predict", json={"instances": keyed}).json()["predictions"]
            == payload["predictions"]
        )
        assert http.get("/v2/models/digits/versions/9").status_code == 404
