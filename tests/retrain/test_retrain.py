"""``dnnops retrain`` on a real registry and real logs: the labeled, drifted traffic a server
captured becomes a challenger that beats the champion on the shifted data, and a canary."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.datasets import load_digits

from dnnops.inference.logger import PredictionLogger
from dnnops.predlog.records import RequestContext
from dnnops.quickstart.camera import new_camera
from tests.conftest import CliResult

POLICY = {
    "drift_share": 0.5,
    "accuracy_below": 0.9,
    "min_new_labels": 200,
    "drift_window": "1h",
    "approval": True,
}


def project(tmp_path: Path, train: pd.DataFrame) -> Path:
    source = tmp_path / "old-camera.parquet"
    train.to_parquet(source, index=False)
    path = tmp_path / "dnnops.yaml"
    config = {
        "name": "digits",
        "data": {"source": str(source), "preprocessing": {"numeric": "scale"}},
        "model": {"arch": "mlp", "params": {"hidden": [64], "dropout": 0.0}},
        "train": {"epochs": 15, "lr": 0.005, "seed": 0},
        "retrain": POLICY,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def capture(home: Path, x: np.ndarray, y: np.ndarray, predicted_by: str) -> None:
    """What a server logs for labeled traffic: one record per prediction, then its label."""
    logger = PredictionLogger(home / "logs").start()
    try:
        ids = logger.new_ids(len(y))
        context = RequestContext(endpoint="digits", model="digits", version=predicted_by)
        probabilities = np.full((len(y), 10), 0.1, dtype="float32")
        logger.predictions.append(
            logger.prediction_records(
                ids, context, x.astype("float32"), labels=y, probabilities=probabilities
            )
        )
        logger.feedback.append(logger.feedback_records(list(zip(ids, y.tolist(), strict=True))))
    finally:
        logger.close()


def test_retraining_on_drifted_labeled_traffic_beats_the_champion(
    tmp_path: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    frame = load_digits(as_frame=True).frame.sample(frac=1.0, random_state=0)
    config = project(tmp_path, frame.iloc[:1000])
    assert cli("train", "-c", str(config), "--quiet", "--json").code == 0
    quiet = cli("retrain", "-c", str(config), "--json")
    assert quiet.code == 0, quiet.err
    assert quiet.json()["outcome"].startswith("not retrained: no trigger fired")
    live = frame.iloc[1000:]
    x = new_camera(live.drop(columns=["target"]).to_numpy(dtype="float64"), seed=4)
    capture(home, x, live["target"].to_numpy(), predicted_by="1")
    time.sleep(0.05)
    result = cli("retrain", "-c", str(config), "--json")
    assert result.code == 0, result.err
    outcome = result.json()
    assert any(t.startswith("drift:") for t in outcome["decision"]["fired"])
    assert outcome["observed"]["new_labels"] == len(live)
    assert outcome["challenger"] == 2
    assert outcome["rows"]["holdout"] == round(len(live) * 0.25)
    assert outcome["accuracy"]["challenger"] > outcome["accuracy"]["champion"] + 0.05
    assert outcome["rollout_id"] is not None
    assert "held for approval" in outcome["outcome"]
    held = cli("rollout", "status", "digits", "--json").json()["rollout"]
    assert (held["candidate"], held["status"], held["baseline"]) == (2, "awaiting_approval", 1)
    assert cli("rollout", "start", "digits@2").code == 0  # a human approves it
    status = cli("rollout", "status", "digits", "--json").json()["rollout"]
    assert (status["id"], status["status"]) == (held["id"], "running")
    runs = cli("runs", "list", "--json").json()
    assert len(runs) == 2


def test_retrain_without_enough_new_labels_says_so(
    tmp_path: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    frame = load_digits(as_frame=True).frame.sample(frac=1.0, random_state=1)
    config = project(tmp_path, frame.iloc[:600])
    assert cli("train", "-c", str(config), "--quiet", "--json").code == 0
    few = frame.iloc[600:700]
    x = new_camera(few.drop(columns=["target"]).to_numpy(dtype="float64"), seed=5)
    capture(home, x, few["target"].to_numpy(), predicted_by="1")
    result = cli("retrain", "-c", str(config), "--json")
    assert result.code == 0, result.err
    outcome = result.json()
    assert outcome["decision"]["fired"], "drift fired"
    assert outcome["outcome"] == "not retrained: 100 new labels; retrain.min_new_labels is 200"
    assert outcome["challenger"] is None
    assert "retraining" in cli("retrain", "-c", str(config)).out
