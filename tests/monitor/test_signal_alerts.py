"""Signal alerts on a real server, caused on purpose and taken away again: a feature that
stops arriving, a flood of refused requests, labels that disagree with the model and
shift its classes, inputs the model is unsure of, a cost over budget, and a model that
answers NaN. Each alert reaches the webhook with its evidence and runbook, and those whose
cause goes are delivered again as resolved."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch
from sklearn.datasets import load_wine

import dnnops
from dnnops.home import resolve_home
from dnnops.registry.alerts import AlertStore
from dnnops.registry.db import open_engine
from tests.conftest import BuiltFolders, subprocess_env, write_project
from tests.monitor.conftest import wait_for
from tests.serve.conftest import start_server
from tests.serve.test_invalid_output import NanAboveTen

NO_HOLD = {
    "confidence_drop": 0,
    "estimated_accuracy_drop": 0,
    "label_drift": 0,
    "production_gap": 0,
    "stale_features": 0,
    "cost": 0,
    "client_errors": 0,
    "invalid_outputs": 0,
}


WINE = {
    "data": {"source": "builtin:wine", "preprocessing": {"numeric": "standardize"}},
    "model": {"arch": "mlp", "params": {"hidden": [16], "dropout": 0.0}},
    "train": {"epochs": 20, "batch_size": 16, "lr": 0.01, "seed": 1},
}


def trained_wine(folder: Path) -> None:
    """Recipe: wine@1 in production, trained once for the module's tests."""
    config = write_project(folder, name="wine", **WINE)
    subprocess.run(
        [sys.executable, "-m", "dnnops", "train", "-c", str(config), "--quiet"],
        env=subprocess_env(folder / "home"), check=True, capture_output=True, timeout=300,
    )  # fmt: skip


def serving(built_folders: BuiltFolders, tmp_path: Path, home: Path, **monitor: Any) -> Path:
    """A copy of the trained home at ``home``, and the project file to serve it with."""
    shutil.copytree(built_folders.copy(trained_wine, tmp_path / "built") / "home", home)
    return write_project(tmp_path, name="wine", **WINE, monitor=monitor)


def delivered(received: list[dict[str, Any]], status: str) -> dict[str, dict[str, Any]]:
    """The signal alerts delivered with ``status``, by signal."""
    return {
        alert["labels"]["signal"]: alert
        for body in received
        if body["status"] == status
        for alert in body["alerts"]
        if "signal" in alert["labels"]
    }


def test_signal_alerts_fire_with_evidence_and_resolve_when_their_cause_goes(
    tmp_path: Path,
    home: Path,
    built_folders: BuiltFolders,
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = webhook
    config = serving(
        built_folders, tmp_path, home,
        evaluate_every="1s",
        webhook_url=url,
        cost_budget=1e-12,  # any prediction costs more
        alerts={"for": NO_HOLD, "min_predictions": 50, "min_labels": 30},
    )  # fmt: skip
    wine = load_wine(as_frame=True).frame
    rows = wine.drop(columns=["target"])
    server = start_server(home, "-c", str(config))
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            predict = _predictor(http)
            # every row with magnesium null: the feature stopped arriving upstream
            ids = predict(rows.assign(magnesium=None).to_dict(orient="records"))
            # inputs the model cannot tell apart: halfway between two classes' means
            means = rows.groupby(wine["target"]).mean()
            halfway = ((means.loc[0] + means.loc[1]) / 2).to_dict()
            unsure = [{**halfway, "magnesium": None}] * 200
            predict(unsure)
            # clients sending a payload the schema refuses: 200 of 378 + 200 requests
            for _ in range(200):
                refused = http.post("/v1/models/wine:predict", json={"instances": [{"x": 1}]})
                assert refused.status_code in (400, 422), refused.text
            # labels: every wine a class 2, so accuracy drops and the classes shift
            _feedback(http, [(pid, 2) for pid in ids])
            raised = {
                "estimated_accuracy_drop",
                "stale_features",
                "client_errors",
                "production_gap",
                "label_drift",
                "confidence_drop",
                "cost",
            }
            wait_for(
                lambda: raised <= set(delivered(received, "firing")),
                f"not all of {raised} fired",
            )
            firing = delivered(received, "firing")
            stale = firing["stale_features"]
            assert "magnesium" in stale["details"]["evidence"]["lag_s"]
            link = stale["annotations"]["runbook_url"]
            assert link == f"{server.url}/runbooks/stale-features", link
            assert http.get(link).status_code == 200, "the server serves the page it links"
            assert http.get("/runbooks/..%2Fconfig").status_code == 404
            assert stale["labels"]["alertname"] == "DnnopsStaleFeatures"
            assert stale["labels"]["version"] == "1"
            assert firing["client_errors"]["labels"]["severity"] == "page"
            assert firing["client_errors"]["details"]["evidence"]["refused"] == 200
            gap = firing["production_gap"]["details"]["evidence"]
            assert gap["production_accuracy"] < gap["test_accuracy"] - 0.3
            shares = firing["label_drift"]["details"]["evidence"]["classes"]
            assert shares["2"]["arrived"] == 1.0
            confidence = firing["confidence_drop"]["details"]["evidence"]
            assert confidence["live_mean"] < confidence["test_mean"] - 0.1

            # the causes go: magnesium arrives again, good traffic dilutes the refusals
            # and the unsure rows, and the right labels replace the wrong ones
            full = rows.to_dict(orient="records")
            ids_again = predict(full * 4)
            _feedback(http, list(zip(ids, wine["target"].tolist(), strict=True)))
            _feedback(http, list(zip(ids_again, wine["target"].tolist() * 4, strict=True)))
            cleared = {"stale_features", "client_errors", "production_gap", "label_drift"}
            wait_for(
                lambda: cleared <= set(delivered(received, "resolved")),
                f"not all of {cleared} resolved: {sorted(delivered(received, 'resolved'))}",
            )
            assert "cost" not in delivered(received, "resolved"), "its cause never went"
    finally:
        server.stop()
    firing_now = AlertStore(open_engine(resolve_home(home).db_url)).list(status="firing")
    assert "wine@1/signal/cost" in {a.key for a in firing_now}
    assert len([b for b in received if b["status"] == "firing"]) <= 3, "grouped, not per alert"


def test_a_model_answering_nan_pages_and_resolves_once_it_stops(
    tmp_path: Path, webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = webhook
    home = tmp_path / "home"
    reference = np.random.default_rng(0).normal(size=(100, 4)).astype("float32")
    torch.manual_seed(0)
    dnnops.log_model(NanAboveTen(), name="nan", reference=reference, home=home)
    project = tmp_path / "dnnops.yaml"
    project.write_text(
        json.dumps(
            {
                "name": "nan",
                "data": {"source": "unused.csv"},
                "monitor": {
                    "evaluate_every": "1s",
                    "webhook_url": url,
                    "alerts": {"invalid_outputs": 0.05, "min_predictions": 10},
                },
            }
        )
    )
    server = start_server(home, "-c", str(project), "--model", "nan@1")
    try:
        with server.client() as http:
            name = http.get("/v2/models/nan").json()["inputs"][0]["name"]

            def infer(first: float) -> int:
                body = {"inputs": [{"name": name, "shape": [1, 4], "datatype": "FP32",
                                    "data": [first, 0.0, 0.0, 0.0]}]}  # fmt: skip
                return http.post("/v2/models/nan/infer", json=body).status_code

            assert [infer(50.0) for _ in range(10)] == [500] * 10
            assert {infer(0.1) for _ in range(40)} == {200}  # 10 of 50 answered NaN: 20%
            wait_for(lambda: "invalid_outputs" in delivered(received, "firing"), "no page")
            page = delivered(received, "firing")["invalid_outputs"]
            assert page["labels"]["severity"] == "page"
            assert page["details"]["evidence"]["invalid_outputs"] == 10
            assert {infer(0.1) for _ in range(250)} == {200}  # 10 of 300: 3.3%, under 0.04
            wait_for(lambda: "invalid_outputs" in delivered(received, "resolved"), "never cleared")
    finally:
        server.stop()


def _predictor(http: httpx.Client) -> Callable[[list[dict[str, Any]]], list[str]]:
    def predict(instances: list[dict[str, Any]]) -> list[str]:
        ids: list[str] = []
        for start in range(0, len(instances), 50):
            answer = http.post(
                "/v1/models/wine:predict", json={"instances": instances[start : start + 50]}
            )
            assert answer.status_code == 200, answer.text
            ids += answer.json()["prediction_ids"]
        return ids

    return predict


def _feedback(http: httpx.Client, labels: list[tuple[str, Any]]) -> None:
    body = {"labels": [{"prediction_id": pid, "label": int(label)} for pid, label in labels]}
    answer = http.post("/v1/feedback", json=body)
    assert answer.status_code == 200, answer.text


def test_attributions_that_move_to_another_feature_raise_attribution_drift(
    tmp_path: Path,
    home: Path,
    built_folders: BuiltFolders,
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = webhook
    config = serving(
        built_folders, tmp_path, home,
        evaluate_every="1s",
        webhook_url=url,
        explain={"sample": 1.0, "every": "1s", "min_explained": 20},
        alerts={"for": {"attribution_drift": 0}},
    )  # fmt: skip
    rows = load_wine(as_frame=True).frame.drop(columns=["target"])
    moved = rows.assign(proline=rows["proline"] + 10 * rows["proline"].std())  # ten sd away
    server = start_server(home, "-c", str(config))
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            _predictor(http)(moved.head(40).to_dict(orient="records"))
            wait_for(
                lambda: "attribution_drift" in delivered(received, "firing"),
                "attribution drift never fired",
                seconds=90,
            )
    finally:
        server.stop()
    evidence = delivered(received, "firing")["attribution_drift"]["details"]["evidence"]
    assert evidence["explained"] >= 20
    assert next(iter(evidence["moved_to"])) == "proline", evidence
