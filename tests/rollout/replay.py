"""Replay before traffic, on a real server's log: a good candidate replayed over the
logged digits passes the canary's gates, answering as the batch predictor does on the same
rows; a broken one (the canary test's v3, which a canary rolls back) is refused on its
accuracy; with ``rollout.replay: required`` a rollout waits for a passing replay."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import yaml
from sklearn.datasets import load_digits

from tests.rollout.conftest import ADMIN, Versions, _infer_body, dnnops
from tests.serve.conftest import start_server


def _serve_digits(versions: Versions, config: Path) -> tuple[list[np.ndarray], list[str]]:
    """300 labelled digits through v1 (production), four a request; the rows and answers."""
    digits = load_digits()
    rows, answers = [], []
    server = start_server(versions.home, "-c", str(config), env={"DNNOPS_ADMIN_TOKEN": "s3cret"})
    try:
        with httpx.Client(base_url=server.url, timeout=30, headers=ADMIN) as http:
            for start in range(0, 300, 4):
                chunk = digits.data[start : start + 4]
                answer = http.post("/v2/models/digits/infer", json=_infer_body(chunk))
                assert answer.status_code == 200, answer.text
                ids = answer.headers["x-prediction-id"].split(",")
                labels = [
                    {"prediction_id": i, "label": int(y)}
                    for i, y in zip(ids, digits.target[start : start + 4], strict=True)
                ]
                assert http.post("/v1/feedback", json={"labels": labels}).status_code == 200
                rows.extend(chunk)
                answers.extend(str(a) for a in answer.json()["outputs"][0]["data"])
            refused = http.post("/v1/endpoints/digits/rollout", json={"version": 2}, headers=ADMIN)
            assert refused.status_code == 409, refused.text
            assert "rollout.replay is required" in refused.json()["error"]
            assert "dnnops replay digits@2" in refused.json()["error"]
    finally:
        server.stop()
    return rows, answers


def check_replay(versions: Versions, tmp_path: Path) -> None:
    config = yaml.safe_load(versions.config.read_text())
    config["rollout"] = {**config["rollout"], "replay": "required"}
    project = tmp_path / "digits.yaml"
    project.write_text(yaml.safe_dump(config))
    rows, served = _serve_digits(versions, project)

    good = dnnops(versions, "replay", "digits@2", "--since", "1h", "-c", str(project), "--json")
    assert good.returncode == 0, good.stdout + good.stderr
    report = json.loads(good.stdout)
    assert report["passed"] is True and report["rows"] == 300
    assert report["matches_log"] == 1.0, "v1 offline answers what v1 answered live"
    assert report["quality"]["champion"]["labels"] == 300
    assert report["quality"]["candidate"]["accuracy"] > 0.9
    assert report["latency"]["candidate_ms_per_row"] > 0
    assert {s["segment"] for s in report["segments"]} >= {"answered 0", "answered 9"}
    assert report["output_drift"]["drifted"] is False
    [kept] = sorted((versions.home / "replays").iterdir())
    assert json.loads(kept.read_text())["candidate"] == 2

    # the batch predictor on the same rows: the replay's agreement is its agreement
    frame = pd.DataFrame(np.array(rows), columns=load_digits().feature_names)
    csv = tmp_path / "logged.csv"
    frame.to_csv(csv, index=False)
    out = tmp_path / "v2.csv"
    predicted = dnnops(versions, "predict", str(csv), "--model", "digits@2", "--out", str(out))
    assert predicted.returncode == 0, predicted.stderr
    batch = pd.read_csv(out)["prediction"].astype(str).tolist()
    agreement = float(np.mean([a == b for a, b in zip(batch, served, strict=True)]))
    assert report["agreement"] == agreement

    broken = dnnops(versions, "replay", "digits@3", "--since", "1h", "-c", str(project), "--json")
    assert broken.returncode == 1, broken.stdout + broken.stderr
    refused = json.loads(broken.stdout)
    assert refused["passed"] is False
    failed = {g["gate"] for g in refused["gates"] if g["outcome"] == "fail"}
    assert "accuracy_drop" in failed, refused["gates"]
    assert refused["quality"]["candidate"]["accuracy"] < 0.3

    page = tmp_path / "dashboard.html"
    shown = dnnops(versions, "monitor", "report", "--since", "1h", "--html", str(page), "--json")
    assert shown.returncode == 0, shown.stderr
    html = page.read_text()  # the on-call view's replays, newest first
    assert html.index('"passes the canary') > html.index('"version":3') > 0

    started = dnnops(versions, "rollout", "start", "digits@2", "-c", str(project))
    assert started.returncode == 0, started.stdout + started.stderr
    dnnops(versions, "rollout", "abort", "digits")
    again = dnnops(versions, "rollout", "start", "digits@3", "-c", str(project))
    assert again.returncode != 0 and "its replay was refused" in again.stderr
