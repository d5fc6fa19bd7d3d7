"""The media loop on a real server: photos filed since the champion (or tickets labelled
through /v1/feedback) retrain a challenger warm-started from its weights and judged on the
newest of them; a canary of the challenger takes image or text traffic beside the
champion and is rolled back."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

import dnnops
from tests.conftest import subprocess_env
from tests.serve.conftest import start_server
from tests.userdata import image_folder, tickets_frame

ADMIN = {"Authorization": "Bearer s3cret"}


def _dnnops(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dnnops", *args],
        env=subprocess_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _file_new_photos(photos: Path, scratch: Path) -> int:
    """Photos drawn with another seed, filed under their classes as a labeller would."""
    image_folder(scratch, per_class=20, size=32, seed=1)
    filed = 0
    for path in sorted(scratch.rglob("*")):
        if path.suffix in {".png", ".jpg"}:
            path.rename(photos / path.parent.name / f"new-{path.name}")
            filed += 1
    return filed


def test_new_photos_retrain_a_warm_started_challenger_whose_canary_rolls_back(
    tmp_path: Path,
) -> None:
    photos = image_folder(tmp_path / "photos", per_class=20, size=32)
    home = tmp_path / "home"
    config = tmp_path / "dnnops.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "shapes",
                "data": {"source": f"{photos}/", "target": "shape", "image": {"size": [32, 32]}},
                "model": {"arch": "cnn", "params": {"channels": [8, 16]}},
                "train": {"epochs": 8, "batch_size": 16, "lr": 0.01, "seed": 2},
                "evaluate": {"baseline": "trivial"},
                "retrain": {"warm_start": True, "holdout": 0.5, "approval": True},
                "rollout": {"steps": [50, 100], "interval": "1h", "min_requests": 10},
            }
        )
    )
    trained = _dnnops(home, "train", "-c", str(config), "--quiet", "--json")
    assert trained.returncode == 0, trained.stderr
    filed = _file_new_photos(photos, tmp_path / "labelled")

    retrained = _dnnops(home, "retrain", "-c", str(config), "--force", "--json")
    assert retrained.returncode == 0, retrained.stderr
    outcome = json.loads(retrained.stdout)
    assert outcome["started_from"] == "shapes@1"  # the champion's weights, and it says so
    assert outcome["challenger"] == 2
    assert outcome["rows"]["captured"] == filed == 60  # the photos filed since v1
    assert outcome["rows"]["holdout"] == 30  # the newest half judges the challenger
    assert set(outcome["accuracy"]) == {"champion", "challenger"}
    shown = json.loads(_dnnops(home, "models", "show", "shapes@2", "--json").stdout)
    start = shown["manifest"]["started_from"]
    assert start["origin"] == "shapes@1" and start["fresh"] == []  # every tensor carried over
    if outcome["rollout_id"] is not None:  # it beat the champion: a canary held for approval
        assert _dnnops(home, "rollout", "abort", "shapes").returncode == 0

    server = start_server(home, "-c", str(config), env={"DNNOPS_ADMIN_TOKEN": "s3cret"})
    try:
        started = httpx.post(
            f"{server.url}/v1/endpoints/shapes/rollout", json={"version": 2}, headers=ADMIN
        )
        assert started.status_code == 201, started.text
        new = sorted(photos.rglob("new-*.png"))[:8]
        body = {"instances": [{"b64": base64.b64encode(p.read_bytes()).decode()} for p in new]}
        during = set()
        for _ in range(12):  # each request routed whole: half of them to the canary
            answer = httpx.post(f"{server.url}/v1/models/shapes:predict", json=body, timeout=30)
            assert answer.status_code == 200, answer.text
            during.add(answer.json()["model_version"])
        assert during == {"1", "2"}, during
        rolled = httpx.post(
            f"{server.url}/v1/endpoints/shapes/rollback",
            json={"reason": "labellers disagree"},
            headers=ADMIN,
        )
        assert rolled.status_code == 200, rolled.text
        after = {
            httpx.post(f"{server.url}/v1/models/shapes:predict", json=body, timeout=30).json()[
                "model_version"
            ]
            for _ in range(6)
        }
        assert after == {"1"}
    finally:
        server.stop()


def test_labelled_tickets_from_the_log_retrain_a_warm_started_text_challenger(
    tmp_path: Path,
) -> None:
    tickets_frame(240).to_csv(tmp_path / "tickets.csv", index=False)
    home = tmp_path / "home"
    config = tmp_path / "dnnops.yaml"
    text = {"column": "ticket", "vocab_size": 150, "max_length": 16}
    config.write_text(
        yaml.safe_dump(
            {
                "name": "tickets",
                "data": {"source": str(tmp_path / "tickets.csv"), "target": "topic", "text": text},
                "model": {"arch": "embedding_bag", "params": {"dim": 16}},
                "train": {"epochs": 10, "batch_size": 16, "lr": 0.01, "seed": 2},
                "evaluate": {"baseline": "trivial"},
                "retrain": {"warm_start": True, "holdout": 0.5, "approval": True},
                "rollout": {"steps": [50, 100], "interval": "1h", "min_requests": 10},
            }
        )
    )
    trained = _dnnops(home, "train", "-c", str(config), "--quiet", "--json")
    assert trained.returncode == 0, trained.stderr
    fresh = tickets_frame(60, seed=5)
    server = start_server(home, "-c", str(config), env={"DNNOPS_ADMIN_TOKEN": "s3cret"})
    try:
        with dnnops.Client(server.url, token="s3cret") as client:  # tickets, then topics
            answer = client.predict("tickets", list(fresh["ticket"]))
            truth = dict(zip(answer["prediction_ids"], fresh["topic"], strict=True))
            assert client.feedback(truth)["accepted"] == 60
        retrained = _dnnops(home, "retrain", "-c", str(config), "--force", "--json")
        assert retrained.returncode == 0, retrained.stderr
        outcome = json.loads(retrained.stdout)
        assert outcome["started_from"] == "tickets@1" and outcome["challenger"] == 2
        assert outcome["rows"]["captured"] == 60  # the texts as logged, with their labels
        assert outcome["rows"]["holdout"] == 30 and set(outcome["accuracy"]) == {
            "champion",
            "challenger",
        }
        if outcome["rollout_id"] is not None:  # it beat the champion: held for approval
            assert _dnnops(home, "rollout", "abort", "tickets").returncode == 0
        started = httpx.post(
            f"{server.url}/v1/endpoints/tickets/rollout", json={"version": 2}, headers=ADMIN
        )
        assert started.status_code == 201, started.text
        body = {"instances": ["my parcel is late", "refund my card"]}
        during = {
            httpx.post(f"{server.url}/v1/models/tickets:predict", json=body).json()["model_version"]
            for _ in range(12)
        }
        assert during == {"1", "2"}, during
        rolled = httpx.post(f"{server.url}/v1/endpoints/tickets/rollback", headers=ADMIN)
        assert rolled.status_code == 200, rolled.text
        after = {
            httpx.post(f"{server.url}/v1/models/tickets:predict", json=body).json()["model_version"]
            for _ in range(6)
        }
        assert after == {"1"}
    finally:
        server.stop()
