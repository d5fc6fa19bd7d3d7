"""The monitoring report on real traffic through a real server, and offline drift."""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import sklearn.datasets

from dnnops.home import resolve_home
from dnnops.serve.launch import BackgroundServer, build_state
from tests.conftest import BuiltFolders, CliResult
from tests.monitor.test_report_schema import check_report
from tests.serve.conftest import one_digits_model


def _send(url: str, rows: np.ndarray) -> list[str]:
    ids: list[str] = []
    with httpx.Client(base_url=url, timeout=30) as http:
        for start in range(0, len(rows), 20):
            chunk = rows[start : start + 20]
            response = http.post("/v1/models/digits:predict", json={"instances": chunk.tolist()})
            assert response.status_code == 200, response.text
            ids += response.json()["prediction_ids"]
    return ids


@pytest.mark.slow
def test_report_shows_slis_quality_and_drift(
    tmp_path: Path,
    cli: Callable[..., CliResult],
    monkeypatch: pytest.MonkeyPatch,
    built_folders: BuiltFolders,
) -> None:
    home = built_folders.copy(one_digits_model, tmp_path / "p") / "home"
    monkeypatch.setenv("DNNOPS_HOME", str(home))
    digits = sklearn.datasets.load_digits()
    clean, labels = digits.data[:300], digits.target[:300]
    state = build_state(resolve_home(home), None, ["digits@production"])
    with BackgroundServer(state) as url:
        ids = _send(url, clean)
        with httpx.Client(base_url=url, timeout=60) as http:
            feedback = [
                {"prediction_id": i, "label": int(y)} for i, y in zip(ids, labels, strict=True)
            ]
            assert http.post("/v1/feedback", json={"labels": feedback}).status_code == 200
            assert (
                http.post("/v1/models/digits:predict", json={"instances": [[1.0]]}).status_code
                == 422
            )
            live = http.get("/v1/monitor/digits", params={"since": "10m"}).json()
            check_report(live)
            assert live["versions"][0]["slis"]["predictions"] == 300
            assert http.get("/v1/monitor/nope").status_code == 404
            assert http.get("/v1/monitor/digits", params={"since": "soon"}).status_code == 400

    report = cli("monitor", "report", "--since", "1h", "--json").json()
    check_report(report)
    [version] = report["versions"]
    slis = version["slis"]
    assert slis["predictions"] == 300 and slis["failed_requests"] == 1
    assert slis["success_rate"] == 1.0, "the refusal was the client's fault (422)"
    assert 0 < slis["latency_p50_ms"] <= slis["latency_p99_ms"]
    assert slis["ingestion_error_rate"] == pytest.approx(1 / 301)
    assert slis["traffic_share"] == 1.0
    assert version["quality"]["labels"] == 300
    assert version["quality"]["classes"] == list(range(10))  # the matrix's rows, by name
    assert version["quality"]["metrics"]["accuracy"] > 0.85
    assert report["drift"]["drifted"] is False
    assert {"feature", "method", "score", "threshold", "drifted"} <= set(
        report["drift"]["features"][0]
    )

    assert version["prediction_drift"]["drifted"] is False
    freshness = version["feature_freshness_s"]
    assert len(freshness) == 64 and all(0 <= age < 600 for age in freshness.values())
    assert version["explainability_coverage"] == 0.0
    assert version["alerts"] == []  # no objectives configured
    confidence = version["confidence"]
    assert confidence["baseline_mean"] > 0.5  # measured on the test split at registration
    assert abs(confidence["shift"]) < 0.1  # same distribution, same confidence
    cost = version["cost"]
    assert cost["currency"] == "USD" and cost["cpu_second_price"] > 0
    assert 0 < cost["cpu_ms_per_prediction"] < 50
    assert cost["per_1k_predictions"] == pytest.approx(cost["cpu_ms_per_prediction"] * 0.00001)

    for segment in (home / "logs" / "predictions").glob("predictions-*.log"):
        settled = segment.stat().st_mtime - 120  # as if written two minutes ago
        os.utime(segment, (settled, settled))
    kept = cli("monitor", "report", "--since", "1h", "--json").json()
    reused = cli("monitor", "report", "--since", "1h", "--json").json()
    assert kept["segments"]["digested"] >= 1 and kept["segments"]["from_disk"] == 0
    assert reused["segments"] == {"digested": 0, "from_disk": kept["segments"]["digested"]}
    for name in ("quality", "drift", "prediction_drift", "cost", "confidence"):
        assert reused["versions"][0][name] == kept["versions"][0][name]
    assert reused["versions"][0]["slis"]["latency_p99_ms"] == slis["latency_p99_ms"]

    camera = np.clip(clean * 0.4 + np.random.default_rng(0).normal(6, 3, clean.shape), 0, 16)
    with BackgroundServer(build_state(resolve_home(home), None, ["digits@production"])) as url:
        camera_ids = _send(url, camera)
        with httpx.Client(base_url=url, timeout=60) as http:
            late = [
                {"prediction_id": i, "label": int(y)}
                for i, y in zip(camera_ids, labels, strict=True)
            ]
            http.post("/v1/feedback", json={"labels": late})
    project = tmp_path / "slo.yaml"
    project.write_text(
        "name: digits\ndata: {source: builtin:digits}\nslo:\n  objectives:\n"
        "    - {name: accuracy, kind: accuracy, target: 0.995}\n"
        "    - {name: availability, kind: success_rate, target: 0.999}\n"
    )
    shifted = cli("monitor", "report", "--since", "1h", "-c", str(project), "--json").json()
    assert shifted["drift"]["drifted"] is True
    [version] = shifted["versions"]
    assert version["quality"]["labels"] == 600
    assert shifted["segments"]["from_disk"] >= 1  # the first server's, settled
    fired = {(a["objective"], a["severity"], a["factor"]) for a in version["alerts"]}
    assert version["quality"]["metrics"]["accuracy"] < 0.9  # the camera costs accuracy ...
    assert version["confidence"]["shift"] is not None
    assert ("accuracy", "page", 14.4) in fired  # ... so (1 - accuracy) / 0.005 >= 14.4
    # the one refusal was the client's (422): it burns no availability budget
    assert not [a for a in fired if a[0] == "availability"]
    objectives = {o["name"]: o for o in version["slo"]}
    assert objectives["accuracy"]["met"] is False
    human = cli("monitor", "report", "--since", "1h", "-c", str(project))
    assert human.code == 0 and "DRIFT" in human.out
    page = tmp_path / "report.html"
    written = cli(
        "monitor", "report", "--since", "1h", "-c", str(project), "--html", str(page), "--json"
    ).json()
    embedded = page.read_text().split("window.DNNOPS_DATA = ", 1)[1].split(";\n", 1)[0]
    document = json.loads(embedded.replace("<\\/", "</"))["endpoints"]["digits"]
    assert document["generated_at"] == written["generated_at"]  # the page is the same report
    assert document["sections"][0]["slis"]["predictions"] == version["slis"]["predictions"]
    stored = cli(
        "monitor", "report", "--since", "1h", "-c", str(project), "--alert", "--json"
    ).json()
    kinds = {a["kind"] for a in stored["alerts"]["new"]}
    assert kinds == {"burn_rate", "drift"}
    repeat = cli(
        "monitor", "report", "--since", "1h", "-c", str(project), "--alert", "--json"
    ).json()
    assert repeat["alerts"]["new"] == []  # deduplicated while firing
    listed = cli("monitor", "alerts", "--status", "firing", "--json").json()
    assert all(a["count"] == 2 for a in listed)
    _check_incident_bundle(cli, tmp_path / "incident" / "digits.zip", project)


def _check_incident_bundle(cli: Callable[..., CliResult], out: Path, project: Path) -> None:
    """``dnnops incident``: one zip with what the on-call engineer needs."""
    made = cli("incident", "digits", "--since", "1h", "-c", str(project), "--out", str(out),
               "--json")  # fmt: skip
    assert made.code == 0, made.err
    assert made.json()["predictions"] == 600 and made.json()["alerts_firing"] == 2
    with zipfile.ZipFile(out) as bundle:
        names = set(bundle.namelist())
        assert names == {
            "README.md", "versions.json", "traffic.json", "report.json", "drift.json",
            "rollouts.json", "alerts.json", "audit.json", "inputs.json", "postmortem.json",
        }  # fmt: skip
        postmortem = json.loads(bundle.read("postmortem.json"))
        readme = bundle.read("README.md").decode()
        report = json.loads(bundle.read("report.json"))
        inputs = json.loads(bundle.read("inputs.json"))
        versions = json.loads(bundle.read("versions.json"))
        drift = json.loads(bundle.read("drift.json"))
    assert "v1: 600 predictions" in readme and "runbook: docs/runbooks/" in readme
    check_report(report)
    assert len(inputs) == 100 and all(len(r["inputs"]) == 64 for r in inputs)
    assert versions[0]["model"] == "digits" and "production" in versions[0]["aliases"]
    assert drift["1"]["drifted"] is True
    [involved] = postmortem["versions"]
    assert involved["version"] == 1 and len(involved["data_fingerprint"]) == 64
    assert "name: digits" in involved["training_config"]
    assert involved["schema"] is not None
    timeline = postmortem["alert_timeline"]
    assert [e["event"] for e in timeline] == ["fired", "fired"] and timeline[0]["at"] <= timeline[
        1
    ]["at"]
    spent = {b["objective"]: b for b in postmortem["budget_spent"]}
    assert spent and all(b["events"] > 0 for b in spent.values())
    assert any(b["spent"] is not None and b["spent"] > 1 for b in spent.values()), spent
    missing = cli("incident", "nope", "--out", str(out))
    assert missing.code == 2 and "no model 'nope'" in missing.err


def test_offline_drift_between_two_files(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {
            "a": rng.normal(0, 1, 2000),
            "b": rng.normal(5, 2, 2000),
            "city": rng.choice(["x", "y"], 2000),
        }
    )
    same = pd.DataFrame(
        {
            "a": rng.normal(0, 1, 800),
            "b": rng.normal(5, 2, 800),
            "city": rng.choice(["x", "y"], 800),
        }
    )
    moved = same.assign(a=same["a"] + 1.5, city="z")
    reference.to_csv(tmp_path / "ref.csv", index=False)
    same.to_parquet(tmp_path / "same.parquet")
    moved.to_csv(tmp_path / "moved.csv", index=False)

    stable = cli(
        "monitor", "drift", str(tmp_path / "ref.csv"), str(tmp_path / "same.parquet"), "--json"
    )
    assert stable.code == 0
    assert stable.json()["drift"]["drifted"] is False
    drifted = cli(
        "monitor", "drift", str(tmp_path / "ref.csv"), str(tmp_path / "moved.csv"), "--json"
    )
    assert drifted.code == 1
    features = {f["feature"]: f for f in drifted.json()["drift"]["features"]}
    assert features["a"]["drifted"] and features["city"]["drifted"] and not features["b"]["drifted"]
    assert features["city"]["method"] == "jensen_shannon"
    ks = cli(
        "monitor",
        "drift",
        str(tmp_path / "ref.csv"),
        str(tmp_path / "moved.csv"),
        "--method",
        "ks",
        "--json",
    )
    assert {f["feature"]: f["method"] for f in ks.json()["drift"]["features"]}["a"] == "ks"
    assert cli("monitor", "drift", str(tmp_path / "ref.csv"), str(tmp_path / "nope.csv")).code == 1
