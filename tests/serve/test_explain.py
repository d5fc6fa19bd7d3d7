"""Explanations on a real server: ``:explain`` answers the live version's predictions with
Integrated Gradients by feature (a trained MLP) or occlusion (a user's ONNX-only module);
bad requests are refused naming the field; a background sample of live predictions is
explained off the serving path, stored, and counted by the report's coverage SLI with
its attribution drift against the validation split."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
import yaml
from sklearn.datasets import load_digits

import dnnops
from tests.serve.conftest import Server, start_server

DIGITS = load_digits().data.astype(float)
READ = {"Authorization": "Bearer r"}


@pytest.fixture(scope="module")
def explaining(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    config = tmp_path_factory.mktemp("explain") / "dnnops.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "digits",
                "data": {"source": "builtin:digits"},
                "monitor": {
                    # the first explanation imports captum; a loaded test machine took over
                    # the 10 s default (the timeout itself is not what this module tests)
                    "explain": {
                        "sample": 1.0,
                        "every": "1s",
                        "max_per_minute": 1000,
                        "timeout": "60s",
                    },
                    "evaluate_every": None,
                },
            }
        )
    )
    server = start_server(
        trained_home, "-c", str(config), env={"DNNOPS_READ_TOKEN": "r", "DNNOPS_ADMIN_TOKEN": "a"}
    )
    yield server
    server.stop()


def test_explain_answers_predictions_with_attributions_by_feature(explaining: Server) -> None:
    rows = DIGITS[:3].tolist()
    with httpx.Client(base_url=explaining.url, timeout=60, headers=READ) as http:
        predicted = http.post("/v1/models/digits:predict", json={"instances": rows}).json()
        answer = http.post("/v1/models/digits:explain", json={"instances": rows})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["predictions"] == predicted["predictions"]
    assert (body["model_name"], body["model_version"]) == ("digits", "1")
    [first, *_] = body["explanations"]
    assert first["method"] == "integrated_gradients"
    assert first["target"] == predicted["predictions"][0]
    assert len(first["attributions"]) == 64 and all(
        isinstance(v, float) for v in first["attributions"].values()
    )
    # a pixel blank in every training image equals the baseline (its mean): no attribution
    never_inked = [i for i in range(64) if DIGITS[:, i].max() == 0.0]
    names = list(first["attributions"])
    assert never_inked and all(first["attributions"][names[i]] == 0.0 for i in never_inked)


def test_explain_refuses_what_it_cannot_explain(explaining: Server) -> None:
    with httpx.Client(base_url=explaining.url, timeout=60) as http:
        anonymous = http.post("/v1/models/digits:explain", json={"instances": [[0.0] * 64]})
        assert anonymous.status_code == 401
        http.headers.update(READ)
        missing = http.post("/v1/models/digits:explain", json={"rows": []})
        assert missing.status_code == 400 and "instances" in missing.json()["error"]
        many = http.post("/v1/models/digits:explain", json={"instances": [[0.0] * 64] * 65})
        assert many.status_code == 400 and "max_instances" in many.json()["error"]
        short = http.post("/v1/models/digits:explain", json={"instances": [[0.0] * 3]})
        assert short.status_code == 422, short.text
        unknown = http.post("/v1/models/nope:explain", json={"instances": [[0.0] * 64]})
        assert unknown.status_code == 404


def test_a_background_sample_is_explained_stored_and_reported(explaining: Server) -> None:
    with httpx.Client(base_url=explaining.url, timeout=60, headers=READ) as http:
        for start in range(0, 40, 10):
            rows = DIGITS[start : start + 10].tolist()
            answered = http.post("/v1/models/digits:predict", json={"instances": rows})
            assert answered.status_code == 200
        deadline = time.monotonic() + 60
        while True:
            report = http.get("/v1/monitor/digits?since=1h").json()["versions"][0]
            explained = report["explanations"]
            if explained is not None and explained["explained"] >= 40:
                break
            assert time.monotonic() < deadline, report
            time.sleep(0.5)
        metrics = http.get("/metrics").text
    assert (
        report["explainability_coverage"] == explained["explained"] / report["slis"]["predictions"]
    )
    assert explained["method"] == "integrated_gradients" and len(explained["importance"]) == 10
    assert explained["reference"] is not None and 0.0 <= explained["shift"] <= 1.0
    assert explained["drifted"] is not None  # 40 explanations: enough to judge
    stored = list((explaining.home / "logs" / "explanations").glob("explanations-*.log"))
    assert stored, "explanations are stored beside the log"
    assert 'dnnops_explanations_total{outcome="stored"}' in metrics
    assert re.search(r"^dnnops_leader 1\.0$", metrics, re.MULTILINE), "a lone server leads"


class UserModule(torch.nn.Module):
    """A model dnnops cannot rebuild from a spec: only its ONNX graph is served."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x * 2.0)  # type: ignore[no-any-return]


def test_an_onnx_only_model_is_explained_by_occlusion(tmp_path: Path) -> None:
    home = tmp_path / "home"
    reference = np.random.default_rng(0).normal(size=(80, 4)).astype("float32")
    torch.manual_seed(0)
    dnnops.log_model(UserModule(), name="user", reference=reference, home=home)
    server = start_server(home, "--model", "user@1")
    try:
        answer = httpx.post(
            f"{server.url}/v1/models/user:explain",
            json={"instances": reference[:2].tolist()},
            timeout=60,
        )
    finally:
        server.stop()
    assert answer.status_code == 200, answer.text
    [first, _] = answer.json()["explanations"]
    assert first["method"] == "occlusion"
    assert np.asarray(first["attributions"]).shape == (4,)  # a tensor model: per element
