"""A model that answers NaN fails the request (500, counted against availability); it is
never answered as class 0 and counted as a success."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import torch

import dnnops
from tests.conftest import CliResult
from tests.serve.conftest import start_server


class NanAboveTen(torch.nn.Module):
    """A linear classifier whose output turns NaN when the first feature exceeds 10."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.linear(x)
        return torch.where(x[:, :1] > 10, torch.full_like(logits, float("nan")), logits)


def test_a_nan_output_is_a_server_error_not_a_class(tmp_path: Path) -> None:
    home = tmp_path / "home"
    reference = np.random.default_rng(0).normal(size=(100, 4)).astype("float32")
    torch.manual_seed(0)
    dnnops.log_model(NanAboveTen(), name="nan", reference=reference, home=home)
    server = start_server(home, "--model", "nan@1")
    try:
        with server.client() as http:
            name = http.get("/v2/models/nan").json()["inputs"][0]["name"]

            def infer(rows: list[list[float]]) -> httpx.Response:
                body = {"inputs": [{"name": name, "shape": [len(rows), 4], "datatype": "FP32",
                                    "data": [v for r in rows for v in r]}]}  # fmt: skip
                return http.post("/v2/models/nan/infer", json=body)

            assert infer([[0.1, 0.2, 0.3, 0.4]]).status_code == 200
            broken = infer([[0.1, 0.2, 0.3, 0.4], [50.0, 0.0, 0.0, 0.0]])
            assert broken.status_code == 500, broken.text
            assert "NaN or infinity for row(s) [1]" in broken.json()["error"]
            metrics = http.get("/metrics").text
            report = http.get("/v1/monitor/nan?since=1h").json()
    finally:
        server.stop()
    assert 'dnnops_requests_total{endpoint="nan",model="nan",status="500",version="1"} 1.0' in (
        metrics
    )
    slis = report["versions"][0]["slis"]
    assert slis["predictions"] == 1 and slis["success_rate"] == 0.5


def test_the_python_api_refuses_a_nan_output_as_the_server_does(tmp_path: Path) -> None:
    from dnnops.models.outputs import NonFiniteOutput

    home = tmp_path / "home"
    reference = np.random.default_rng(0).normal(size=(100, 4)).astype("float32")
    torch.manual_seed(0)
    dnnops.log_model(NanAboveTen(), name="nan", reference=reference, home=home)
    model = dnnops.load("nan@1", home=home)
    good = np.array([[0.1, 0.2, 0.3, 0.4]], dtype="float32")
    assert len(model.predict(good)) == 1
    broken = np.array([[0.1, 0.2, 0.3, 0.4], [50.0, 0.0, 0.0, 0.0]], dtype="float32")
    with pytest.raises(NonFiniteOutput, match=r"NaN or infinity for row\(s\) \[1\] \(1 of 2\)"):
        model.predict(broken)
    with pytest.raises(NonFiniteOutput):
        model.predict_proba(broken)


def test_batch_prediction_refuses_a_nan_output_naming_the_file_row(
    home: Path, cli: Callable[..., CliResult]
) -> None:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(rng.normal(size=(100, 4)), columns=["a", "b", "c", "d"])
    torch.manual_seed(0)
    dnnops.log_model(NanAboveTen(), name="nan", reference=reference, home=home)
    rows = reference.head(8).copy()
    rows.loc[6, "a"] = 500.0  # standardized, still far above 10
    rows.to_csv(home.parent / "rows.csv", index=False)
    out = home.parent / "answers.parquet"
    done = cli("predict", str(home.parent / "rows.csv"), "--model", "nan@1", "--out", str(out))
    assert done.code != 0
    assert "NaN or infinity for row(s) [6] (1 of 8)" in done.err
    assert not out.exists()  # no answers written beside the refused ones


def test_the_api_and_batch_prediction_answer_from_one_predictor_contract(tmp_path: Path) -> None:
    """Probabilities (rows summing to 1), never logits, the same numbers on both paths."""
    from dnnops.batch.predict import predict_file
    from dnnops.data.policy import InputPolicy
    from dnnops.home import resolve_home
    from dnnops.inference.predictor import Predictor
    from dnnops.registry.loader import load_version
    from dnnops.registry.open import open_registry

    home = tmp_path / "home"
    reference = pd.DataFrame(
        np.random.default_rng(0).normal(size=(100, 4)), columns=["a", "b", "c", "d"]
    )
    torch.manual_seed(0)
    dnnops.log_model(NanAboveTen(), name="nan", reference=reference, home=home)
    registry = open_registry(resolve_home(home))
    predictor = Predictor.create(load_version(registry, registry.resolve_ref("nan@1")))
    x = reference.head(5).to_numpy("float32")
    outputs = predictor(x)
    assert outputs.dtype == np.float32 and np.allclose(outputs.sum(axis=1), 1.0, atol=1e-6)
    assert (outputs >= 0).all(), "probabilities, not logits"
    model = dnnops.load("nan@1", home=home)
    np.testing.assert_allclose(model.predict_proba(reference.head(5)), outputs, rtol=1e-6)
    assert list(model.predict(reference.head(5))) == list(predictor.answers(outputs))
    reference.head(5).to_csv(tmp_path / "rows.csv", index=False)
    predict_file(
        predictor.loaded, tmp_path / "rows.csv", tmp_path / "out.parquet", policy=InputPolicy()
    )
    written = pd.read_parquet(tmp_path / "out.parquet")
    probabilities = written[[f"probability_{c}" for c in model.classes]].to_numpy()
    np.testing.assert_allclose(probabilities, outputs, rtol=1e-6)
    assert list(written["prediction"]) == list(predictor.answers(outputs))
