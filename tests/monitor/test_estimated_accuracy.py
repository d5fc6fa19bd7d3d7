"""Accuracy estimated before labels: a calibrator fitted at registration (temperature or
isotonic, whichever calibrates the held-out rows better), then CBPE and ATC over each
window's live predictions, in the report and on /metrics, with the estimate's error once
labels arrive."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from sklearn.datasets import load_digits

from dnnops.evaluate.calibration import Calibrator, fit_calibrator
from dnnops.quickstart.camera import new_camera
from tests.conftest import BuiltFolders, subprocess_env
from tests.serve.conftest import one_digits_model, start_server


def overconfident(rows: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of a model right ~70% of the time that claims ~95% (logits x 3)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, rows)
    logits = rng.normal(0, 1, (rows, classes))
    logits[np.arange(rows), labels] += 1.6
    sharp = np.exp(3 * logits)
    return sharp / sharp.sum(axis=1, keepdims=True), labels


def test_calibration_turns_overconfidence_into_the_accuracy_it_estimates() -> None:
    probabilities, labels = overconfident(4000, 5, seed=1)
    calibrator = fit_calibrator(probabilities, labels)
    assert calibrator is not None
    assert calibrator.brier_after < calibrator.brier_before
    fresh, truth = overconfident(4000, 5, seed=2)  # other rows, same model
    accuracy = float((fresh.argmax(axis=1) == truth).mean())
    assert abs(float(fresh.max(axis=1).mean()) - accuracy) > 0.1, "raw confidence is far off"
    assert abs(float(calibrator.confidence(fresh).mean()) - accuracy) < 0.02
    atc = float((calibrator.confidence(fresh) > calibrator.atc_threshold).mean())
    assert abs(atc - accuracy) < 0.03
    stored = Calibrator.model_validate_json(calibrator.model_dump_json())
    assert np.allclose(stored.confidence(fresh), calibrator.confidence(fresh))
    assert fit_calibrator(probabilities[:5], labels[:5]) is None, "too few rows to calibrate"


def test_a_server_estimates_accuracy_before_labels_and_scores_the_estimate_after(
    tmp_path: Path, built_folders: BuiltFolders
) -> None:
    home = built_folders.copy(one_digits_model, tmp_path / "p") / "home"
    digits = load_digits()
    rng = np.random.default_rng(7)
    rows = np.clip(digits.data + rng.normal(0, 3.0, digits.data.shape), 0, 16)  # a shift
    config = tmp_path / "digits.yaml"
    config.write_text(
        "name: digits\ndata: {source: 'builtin:digits'}\nmonitor: {evaluate_every: 1s}\n"
    )
    server = start_server(home, "-c", str(config))
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            answered, ids = [], []
            for start in range(0, len(rows), 50):
                reply = http.post(
                    "/v1/models/digits:predict",
                    json={"instances": rows[start : start + 50].tolist()},
                )
                assert reply.status_code == 200, reply.text
                answered += reply.json()["predictions"]
                ids += reply.json()["prediction_ids"]
            accuracy = float(np.mean(np.array(answered) == digits.target))
            report = http.get("/v1/monitor/digits?since=1h").json()
            [section] = report["versions"]
            estimate = section["estimated_accuracy"]
            assert estimate["predictions"] == len(rows)
            assert estimate["calibration"] in ("temperature", "isotonic")
            assert abs(estimate["cbpe"] - accuracy) < 0.05, (estimate, accuracy)
            assert estimate["low"] < estimate["cbpe"] < estimate["high"]
            assert abs(estimate["atc"] - accuracy) < 0.08, (estimate, accuracy)
            assert estimate["observed"] is None, "no label has arrived"
            queue = http.get("/v1/labels/queue/digits?budget=5").json()["items"]
            assert len(queue) == 5 and all(item["label"] is None for item in queue)
            margins = [item["margin"] for item in queue]
            assert margins == sorted(margins), "the least certain first"

            labels = [
                {"prediction_id": i, "label": int(t)}
                for i, t in zip(ids, digits.target, strict=True)
            ]
            assert http.post("/v1/feedback", json={"labels": labels}).status_code == 200
            scored = http.get("/v1/monitor/digits?since=1h").json()["versions"][0]
            after = scored["estimated_accuracy"]
            assert http.get("/v1/labels/queue/digits?budget=5").json()["items"] == []
            refused = http.get("/v1/labels/queue/digits?strategy=loudest")
            assert refused.status_code == 400 and "strategy" in refused.text
            assert after["observed"] == accuracy
            used = after["agreement"] if after["method"] == "agreement" else after["cbpe"]
            assert after["error"] == used - accuracy
            deadline = time.monotonic() + 30  # the monitor loop's tick (every second)
            while not abs(published_cbpe(http.get("/metrics").text) - after["cbpe"]) <= 1e-6:
                assert time.monotonic() < deadline, "the monitor loop never published it"
                time.sleep(0.5)
    finally:
        server.stop()


def test_a_new_camera_is_estimated_by_agreement_where_confidence_stays_high(
    tmp_path: Path,
) -> None:
    """The quickstart's new camera: the model answers as confidently as ever and is right
    on about one digit in ten. The window's inputs shifted, so the report judges it by the
    version's agreement panel, which sees the fall that confidence does not."""
    home = tmp_path / "home"
    config = tmp_path / "digits.yaml"
    config.write_text(  # as the quickstart's: standardized pixels, which the camera moves
        "name: digits\n"
        "data: {source: 'builtin:digits', preprocessing: {numeric: standardize}}\n"
        "model: {arch: mlp, params: {hidden: [64], dropout: 0.0}}\n"
        "train: {epochs: 20, lr: 0.005, seed: 1}\n"
        "evaluate: {baseline: trivial}\n"
    )
    subprocess.run(
        [sys.executable, "-m", "dnnops", "train", "-c", str(config), "--quiet"],
        env=subprocess_env(home),
        check=True,
    )
    digits = load_digits()
    rows = new_camera(digits.data, seed=3)
    server = start_server(home, "--model", "digits@production")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            answered = []
            for start in range(0, len(rows), 100):
                reply = http.post(
                    "/v1/models/digits:predict",
                    json={"instances": rows[start : start + 100].tolist()},
                )
                assert reply.status_code == 200, reply.text
                answered += reply.json()["predictions"]
            accuracy = float(np.mean(np.array(answered) == digits.target))
            section = http.get("/v1/monitor/digits?since=1h").json()["versions"][0]
            estimate = section["estimated_accuracy"]
            assert accuracy < 0.5 and estimate["cbpe"] - accuracy > 0.3, (estimate, accuracy)
            assert not estimate["reliable"] and estimate["method"] == "agreement"
            assert abs(estimate["agreement"] - accuracy) < 0.15, (estimate, accuracy)
            reading = {s["signal"]: s for s in section["signals"]}["estimated_accuracy_drop"]
            assert reading["evidence"]["method"] == "agreement"
            assert reading["evidence"]["estimated"] == estimate["agreement"]
    finally:
        server.stop()


def published_cbpe(metrics: str) -> float:
    """``dnnops_estimated_accuracy{method="cbpe"}`` on /metrics (NaN while absent)."""
    for line in metrics.splitlines():
        if line.startswith("dnnops_estimated_accuracy{") and 'method="cbpe"' in line:
            return float(line.rsplit(" ", 1)[1])
    return float("nan")
