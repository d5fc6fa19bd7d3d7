"""Thirty kinds of bad request: each gets a 4xx JSON error naming the problem, and the
server keeps serving; plus overload (503), deadlines (504) and admin auth."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from dnnops.home import resolve_home
from dnnops.predlog.reader import FEEDBACK, read_feedback_records
from dnnops.registry.open import open_registry
from tests.serve.conftest import Server, start_server

ROW = [0.0] * 64
INFER = "/v2/models/digits/infer"
PREDICT = "/v1/models/digits:predict"


def _tensor(**overrides: object) -> bytes:
    spec: dict[str, object] = {"name": "input", "shape": [1, 64], "datatype": "FP32", "data": ROW}
    spec.update(overrides)
    return json.dumps({"inputs": [spec]}).encode()


def _binary(declared: int, blob: bytes, header_extra: int = 0) -> tuple[bytes, dict[str, str]]:
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": [1, 64],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": declared},
                }
            ]
        }
    ).encode()
    return head + blob, {"Inference-Header-Content-Length": str(len(head) + header_extra)}


FULL_ROW = np.zeros(64, "float32").tobytes()
INF_ROW = np.array([0.0] * 5 + [np.inf] + [0.0] * 58, "float32").tobytes()
CASES: list[tuple[str, str, bytes, dict[str, str], int]] = [
    ("empty body", INFER, b"", {}, 400),
    ("not json", INFER, b"{nope", {}, 400),
    ("json array", INFER, b"[1, 2]", {}, 400),
    ("no inputs", INFER, b"{}", {}, 400),
    ("empty inputs", INFER, b'{"inputs": []}', {}, 400),
    ("input not an object", INFER, b'{"inputs": [3]}', {}, 400),
    ("missing name", INFER, _tensor(name=""), {}, 400),
    ("unknown datatype", INFER, _tensor(datatype="FP8"), {}, 400),
    ("shape not a list", INFER, _tensor(shape="1x64"), {}, 400),
    ("negative shape", INFER, _tensor(shape=[-1, 64]), {}, 400),
    ("huge shape", INFER, _tensor(shape=[10**9, 10**9]), {}, 400),
    ("data count mismatch", INFER, _tensor(data=[0.0] * 63), {}, 400),
    ("strings in FP32", INFER, _tensor(data=["a"] * 64), {}, 400),
    ("booleans in FP32", INFER, _tensor(data=[True] + [0.0] * 63), {}, 400),
    ("ragged nested data", INFER, _tensor(data=[[0.0], 1.0] + [0.0] * 62), {}, 400),
    (
        "no data",
        INFER,
        json.dumps({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32"}]}).encode(),
        {},
        400,
    ),
    ("wrong feature count", INFER, _tensor(shape=[1, 63], data=[0.0] * 63), {}, 422),
    ("wrong tensor name", INFER, _tensor(name="pixels"), {}, 422),
    ("BYTES for a numeric model", INFER, _tensor(datatype="BYTES", data=["x"] * 64), {}, 422),
    ("zero rows", INFER, _tensor(shape=[0, 64], data=[]), {}, 422),
    ("infinity in binary data", INFER, *_binary(256, INF_ROW), 422),
    ("NaN token in JSON", INFER, _tensor().replace(b"0.0]", b"NaN]"), {}, 400),
    ("truncated binary", INFER, *_binary(256, FULL_ROW[:100]), 400),
    ("binary size mismatch", INFER, *_binary(100, FULL_ROW[:100]), 400),
    (
        "header length past body",
        INFER,
        _binary(256, FULL_ROW)[0],
        {"Inference-Header-Content-Length": "99999"},
        400,
    ),
    (
        "header length not a number",
        INFER,
        _binary(256, FULL_ROW)[0],
        {"Inference-Header-Content-Length": "ten"},
        400,
    ),
    ("unclaimed binary bytes", INFER, *_binary(256, FULL_ROW + b"extra"), 400),
    (
        "unknown output requested",
        INFER,
        json.dumps(
            {"inputs": json.loads(_tensor())["inputs"], "outputs": [{"name": "embedding"}]}
        ).encode(),
        {},
        400,
    ),
    ("v1 without instances", PREDICT, b'{"rows": []}', {}, 400),
    (
        "v1 instances wrong width",
        PREDICT,
        json.dumps({"instances": [[0.0] * 10]}).encode(),
        {},
        422,
    ),
    (
        "v1 unknown feature",
        PREDICT,
        json.dumps({"instances": [{"pixel_9_9": 1.0}]}).encode(),
        {},
        422,
    ),
    ("unknown model", "/v2/models/nope/infer", _tensor(), {}, 404),
    ("unknown version", "/v2/models/digits/versions/77/infer", _tensor(), {}, 404),
    ("body too large", INFER, b"x" * (9 * 1024 * 1024), {}, 413),
]


@pytest.mark.parametrize(
    ("case", "path", "body", "headers", "status"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_requests_get_clear_4xx_errors(
    server: Server, case: str, path: str, body: bytes, headers: dict[str, str], status: int
) -> None:
    with server.client() as http:
        response = http.post(path, content=body, headers=headers)
        assert response.status_code == status, (case, response.text)
        assert isinstance(response.json()["error"], str) and response.json()["error"]
        healthy = http.post(INFER, content=_tensor())
        assert healthy.status_code == 200, case


def test_errors_name_the_feature(server: Server) -> None:
    with server.client() as http:
        body, headers = _binary(256, INF_ROW)
        infinite = http.post(INFER, content=body, headers=headers)
        assert "pixel_0_5" in infinite.json()["error"]
        assert "infinite value" in infinite.json()["error"]
        assert "serve.non_finite: reject" in infinite.json()["error"]


def test_feedback_answers_each_label_and_refuses_what_it_cannot_score(server: Server) -> None:
    with server.client() as http:
        ids = (
            http.post(INFER, content=_tensor(shape=[2, 64], data=ROW * 2))
            .headers["x-prediction-id"]
            .split(",")
        )
        labels = [
            {"prediction_id": ids[0], "label": 3},
            {"prediction_id": "made-up-1", "label": 3},
            {"prediction_id": ids[1], "label": "cat"},  # digits has classes 0..9
        ]
        answer = http.post("/v1/feedback", json={"labels": labels}).json()
        assert answer["accepted"] == 1 and answer["errors"] is True
        assert answer["refused"] == {"unknown_prediction_id": 1, "unknown_label": 1}
        assert [i["status"] for i in answer["items"]] == [
            "accepted",
            "unknown_prediction_id",
            "unknown_label",
        ]
        again = http.post("/v1/feedback", json={"labels": [{"prediction_id": ids[0], "label": 5}]})
        assert again.json()["items"] == [{"prediction_id": ids[0], "status": "relabeled"}]
        same = http.post("/v1/feedback", json={"labels": [{"prediction_id": ids[0], "label": 5}]})
        assert same.json()["items"][0]["status"] == "accepted", (
            "the same label twice is no re-label"
        )
        assert http.post("/v1/feedback", json={"labels": [{"label": 3}]}).status_code == 400
        assert http.post("/v1/feedback", content=b"nope").status_code == 400
        metrics = http.get("/metrics").text
    assert 'dnnops_feedback_labels_total{outcome="unknown_prediction_id"} 1.0' in metrics
    assert 'dnnops_feedback_labels_total{outcome="relabeled"} 1.0' in metrics
    logged = [r for r in read_feedback_records(server.home / "logs" / FEEDBACK)]
    assert [(r.prediction_id, r.label) for r in logged if r.prediction_id in ids] == [
        (ids[0], 3),
        (ids[0], 5),
        (ids[0], 5),
    ], "refused labels are never logged"
    registry = open_registry(resolve_home(server.home))
    [relabel] = [e for e in registry.audit_log("digits") if e["action"] == "relabel"]
    assert relabel["details"] == {"prediction_id": ids[0], "before": 3, "after": 5}


def test_labels_for_predictions_made_before_a_restart_are_accepted(
    trained_home: Path, tmp_path: Path
) -> None:
    """The ids a server remembers are its own; others are found in the log's digests."""
    first = start_server(trained_home, "--model", "digits@production")
    try:
        with first.client() as http:
            ids = http.post(INFER, content=_tensor()).headers["x-prediction-id"].split(",")
    finally:
        first.stop()
    second = start_server(trained_home, "--model", "digits@production")
    try:
        with second.client() as http:
            labels = [{"prediction_id": ids[0], "label": 1}, {"prediction_id": "gone", "label": 1}]
            answer = http.post("/v1/feedback", json={"labels": labels}).json()
        assert [i["status"] for i in answer["items"]] == ["accepted", "unknown_prediction_id"]
    finally:
        second.stop()


def test_admin_routes_need_the_token(server: Server) -> None:
    route = "/v1/endpoints/digits/versions"
    assert httpx.post(f"{server.url}{route}", json={"version": 1}).status_code == 401
    with server.client() as http:
        wrong = http.post(route, json={"version": 1}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403
        admin = {"Authorization": "Bearer s3cret"}
        listed = http.post(route, json=[{"version": 1}], headers=admin)  # not an object
        assert listed.status_code == 400 and "must be a JSON object" in listed.json()["error"]
        broken = http.post(route, content=b"{version", headers=admin)
        assert broken.status_code == 400 and "not valid JSON" in broken.json()["error"]
        right = http.post(route, json={"version": 1}, headers=admin)
        assert right.status_code == 200, right.text
        assert http.get("/v1/endpoints/digits").json()["live_version"] == "1"


def test_metrics_expose_latency_batches_and_outcomes(server: Server) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    with server.client() as http:
        http.post(INFER, content=_tensor())
        text = http.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in (
        "dnnops_requests",
        "dnnops_request_duration_seconds",
        "dnnops_queue_duration_seconds",
        "dnnops_compute_duration_seconds",
        "dnnops_batch_size",
        "dnnops_queue_depth",
        "dnnops_rejected",
        "dnnops_instances",
        "process_cpu_seconds",
    ):
        assert name in families, name
    statuses = {s.labels.get("status") for s in families["dnnops_requests"].samples}
    assert "200" in statuses


def test_queue_full_is_503_with_retry_after_and_deadlines_are_504(
    trained_home: Path, tmp_path: Path
) -> None:
    config = tmp_path / "tight.yaml"
    config.write_text(
        "name: digits\ndata: {source: builtin:digits}\n"
        "serve: {queue_limit: 8, max_batch_size: 64, max_delay: 300ms, timeout: 20ms}\n"
    )
    tight = start_server(trained_home, "-c", str(config))
    try:
        with httpx.Client(base_url=tight.url, timeout=30) as http:
            # more rows than the whole queue holds can never be served: 413 naming the
            # limit, not a 503 that invites a retry which always fails
            too_many = http.post(INFER, content=_tensor(shape=[16, 64], data=ROW * 16))
            assert too_many.status_code == 413
            assert "serve.queue_limit" in too_many.json()["error"]
            assert "16 rows" in too_many.json()["error"]
            # eight rows fill the queue for 300 ms (the batch waits for max_delay): the
            # next row meanwhile is a 503 with Retry-After
            with ThreadPoolExecutor(1) as pool:
                filling = pool.submit(
                    http.post, INFER, content=_tensor(shape=[8, 64], data=ROW * 8)
                )
                time.sleep(0.1)
                full = http.post(INFER, content=_tensor())
                late = filling.result()
            assert full.status_code == 503
            assert full.headers["retry-after"] == "1"
            assert late.status_code == 504  # waited 300 ms for a batch; deadline 20 ms
            assert "deadline" in late.json()["error"]
            metrics = http.get("/metrics").text
            assert (
                'dnnops_timed_out_total{endpoint="digits",model="digits",version="1"} 1.0'
                in metrics
            )
            # neither ever reached the model: the version's batch series exist from its
            # load (at zero, as Prometheus advises for known label sets) and stay there
            assert (
                'dnnops_batch_size_count{endpoint="digits",model="digits",version="1"} 0.0'
                in metrics
            )
    finally:
        tight.stop()
