"""A user's own CSV served: string labels, categories and missing values, end to end over
real HTTP, on data the test generates."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import subprocess_env
from tests.serve.conftest import Server, start_server
from tests.userdata import SPECIES, penguins_frame, project_file, write_csv

PREDICT = "/v1/models/penguins:predict"
ROW = {"bill_length_mm": 39.0, "body_mass_g": 3650.0, "island": "Dream", "sex": "female"}


def dnnops(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dnnops", *args],
        env=subprocess_env(home),
        check=check,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def penguins_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("penguins")
    home = folder / "home"
    source = write_csv(penguins_frame(), folder / "penguins.csv")
    config = project_file(folder / "dnnops.yaml", "penguins", source, "species")
    dnnops(home, "train", "-c", str(config), "--quiet", "--json")
    strict = {"gates": [{"metric": "accuracy", "min": 1.01}]}
    config = project_file(folder / "v2.yaml", "penguins", source, "species", evaluate=strict)
    failed = dnnops(home, "train", "-c", str(config), "--quiet", "--json", check=False)
    assert failed.returncode == 1 and json.loads(failed.stdout)["version"] == 2
    return home


@pytest.fixture(scope="module")
def penguins(penguins_home: Path) -> Iterator[Server]:
    running = start_server(
        penguins_home, "--model", "penguins@production", env={"DNNOPS_ADMIN_TOKEN": "tok"}
    )
    yield running
    running.stop()


def _records(home: Path) -> list[dict[str, Any]]:
    out = dnnops(home, "logs", "show", "--endpoint", "penguins", "--jsonl", "--limit", "10000")
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def test_string_labels_are_answered_as_strings_on_v1_and_logged_as_such(
    penguins: Server,
) -> None:
    with penguins.client() as http:
        response = http.post(PREDICT, json={"instances": [ROW, {**ROW, "island": "Biscoe"}]})
        assert response.status_code == 200, response.text
        payload = response.json()
    assert all(p in SPECIES for p in payload["predictions"])
    assert len(payload["probabilities"][0]) == len(SPECIES)
    ids = set(payload["prediction_ids"])
    logged = [r for r in _records(penguins.home) if r.get("id") in ids]
    assert {r["output"] for r in logged} <= set(SPECIES) and len(logged) == 2
    assert all(r["status"] == 200 for r in logged)


def test_a_huge_text_value_is_answered_but_logged_cut_and_says_so(penguins: Server) -> None:
    """A request of the body limit once wrote a 7 MB value to the log."""
    huge = "Mars" * 25_000  # 100,000 characters: an unseen island, answered as such
    with penguins.client() as http:
        response = http.post(PREDICT, json={"instances": [{**ROW, "island": huge}]})
        assert response.status_code == 200, response.text
        pid = response.json()["prediction_ids"][0]
    [record] = [r for r in _records(penguins.home) if r.get("id") == pid]
    logged = record["inputs"]["island"]
    assert logged.startswith("MarsMars") and len(logged) < 16_500
    assert logged.endswith("[cut: 100000 characters, 16384 logged]")


def test_v2_answers_string_labels_as_bytes(penguins: Server) -> None:
    inputs = [
        {
            "name": k,
            "shape": [1],
            "datatype": "BYTES" if isinstance(v, str) else "FP64",
            "data": [v],
        }
        for k, v in ROW.items()
    ]
    response = httpx.post(f"{penguins.url}/v2/models/penguins/infer", json={"inputs": inputs})
    assert response.status_code == 200, response.text
    label = next(o for o in response.json()["outputs"] if o["name"] == "label")
    assert label["datatype"] == "BYTES" and label["data"][0] in SPECIES


def test_text_that_is_not_unicode_is_a_named_400_on_every_route(penguins: Server) -> None:
    """Invalid UTF-8 in binary BYTES and a lone surrogate escape in JSON once gave 500s:
    each is now a 4xx naming the input."""
    url = f"{penguins.url}/v2/models/penguins/infer"
    island = {"name": "island", "shape": [1], "datatype": "BYTES"}
    others = [
        {
            "name": k,
            "shape": [1],
            "datatype": "BYTES" if isinstance(v, str) else "FP64",
            "data": [v],
        }
        for k, v in ROW.items()
        if k != "island"
    ]
    raw = b"\x03\x00\x00\x00\xff\xfe\xfd"  # one element of three bytes, not UTF-8
    header = json.dumps(
        {"inputs": [*others, {**island, "parameters": {"binary_data_size": len(raw)}}]}
    ).encode()
    binary = httpx.post(
        url,
        content=header + raw,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert binary.status_code == 422 and "island" in binary.json()["error"], binary.text
    lone = '"\\ud800"'  # JSON's escape of half a surrogate pair: no Unicode character
    body = json.dumps({"inputs": [*others, {**island, "data": ["X"]}]}).replace('"X"', lone)
    row = json.dumps({"instances": [{**ROW, "island": "X"}]}).replace('"X"', lone)
    for route, content in (("/v2/models/penguins/infer", body), (PREDICT, row)):
        escaped = httpx.post(f"{penguins.url}{route}", content=content.encode())
        assert escaped.status_code == 400 and "surrogate" in escaped.json()["error"], escaped.text


def test_the_admin_route_refuses_a_version_that_failed_its_gates(penguins: Server) -> None:
    admin = {"Authorization": "Bearer tok"}
    with penguins.client() as http:
        refused = http.post("/v1/endpoints/penguins/rollout", json={"version": 2}, headers=admin)
        assert refused.status_code == 409
        assert "penguins@2 failed its evaluation gates (accuracy" in refused.json()["error"]
        forced = http.post(
            "/v1/endpoints/penguins/rollout", json={"version": 2, "force": True}, headers=admin
        )
        assert forced.status_code == 201, forced.text
        undone = http.post("/v1/endpoints/penguins/rollback", json={}, headers=admin)
        assert undone.status_code == 200, undone.text


def test_the_boundary_does_what_training_did_and_counts_it(penguins: Server) -> None:
    odd = [
        {**ROW, "bill_length_mm": None},  # training imputed missing numbers
        {**ROW, "island": "Mars"},  # the encoding's unknown bucket
        {**ROW, "body_mass_g": 1e9},  # served; drift monitoring sees it
        {**ROW, "sex": None},
    ]
    with penguins.client() as http:
        response = http.post(PREDICT, json={"instances": odd})
        assert response.status_code == 200, response.text
        assert all(p in SPECIES for p in response.json()["predictions"])
        text = http.get("/metrics").text
        wrong = http.post(PREDICT, json={"instances": [{**ROW, "body_mass_g": "heavy"}]})
    assert wrong.status_code == 422
    assert wrong.json()["error"] == "feature 'body_mass_g' must be a number, got 'heavy'"
    for feature, kind in (
        ("bill_length_mm", "missing"),
        ("island", "unseen_category"),
        ("body_mass_g", "out_of_range"),
        ("sex", "missing"),
    ):
        assert f'feature="{feature}",kind="{kind}"' in text


def test_models_show_gives_a_request_that_the_server_answers_and_loadtest_uses_it(
    penguins: Server,
) -> None:
    shown = json.loads(dnnops(penguins.home, "models", "show", "penguins@1", "--json").stdout)
    assert [c["name"] for c in shown["inputs"]["columns"]] == list(ROW)
    request = shown["example_request"]
    assert request["instances"][0]["island"] in {"Biscoe", "Dream", "Torgersen"}
    with penguins.client() as http:
        assert http.post(PREDICT, json=request).status_code == 200
    human = dnnops(penguins.home, "models", "show", "penguins@1").stdout
    assert "bill_length_mm" in human and "curl -s" in human
    load = dnnops(penguins.home, "loadtest", penguins.url, "--duration", "1", "--json")
    summary = json.loads(load.stdout)
    assert summary["requests"] > 0 and summary["errors"] == {}


def test_serving_an_alias_that_does_not_exist_says_what_does_in_one_line(
    penguins_home: Path,
) -> None:
    result = dnnops(
        penguins_home, "serve", "--model", "penguins@staging", "--port", "0", check=False
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no alias 'staging' (versions: 2, 1;" in result.stderr
    assert "dnnops models alias penguins 2 staging" in result.stderr


def test_feedback_file_refuses_unknown_ids_and_labels_and_counts_them(
    penguins: Server, tmp_path: Path
) -> None:
    with penguins.client() as http:
        ids = http.post(PREDICT, json={"instances": [ROW, ROW, ROW]}).json()["prediction_ids"]
    labels = tmp_path / "labels.csv"
    labels.write_text(
        f"prediction_id,label\n{ids[0]},Adelie\n{ids[1]},Gentoo\n{ids[2]},Emperor\nnope-1,Adelie\n"
    )
    result = dnnops(penguins.home, "feedback", str(labels), "--json", check=False)
    assert result.returncode == 1
    verdict = json.loads(result.stdout)
    assert verdict["accepted"] == 2
    assert verdict["refused"] == {"unknown_label": 1, "unknown_prediction_id": 1}
    assert verdict["examples"]["unknown_label"] == [f"{ids[2]}: 'Emperor'"]
