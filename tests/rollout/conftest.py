"""A registry with a good v1, a good v2 and a broken v3 (trained on shuffled labels), and
a client that drives labeled digits traffic at a real server."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from sklearn.datasets import load_digits

from tests.conftest import BuiltFolders, subprocess_env

ADMIN = {"Authorization": "Bearer s3cret"}
ROLLOUT = {
    "interval": "1s",
    "min_requests": 40,
    "steps": [25, 50, 100],
    "failure_threshold": 2,
    # These tests judge promotion and rollback. One pause of this shared machine can
    # delay several canary requests at once, more than the latency gate's noise guard
    # expects of independent requests (the gate itself is tested in test_policy.py).
    "latency_slack": "25ms",
}


def project(folder: Path, source: str, seed: int, name: str = "digits.yaml") -> Path:
    path = folder / name
    config = {
        "name": "digits",
        "data": {"source": source, "preprocessing": {"numeric": "scale"}},
        "model": {"arch": "mlp", "params": {"hidden": [64], "dropout": 0.0}},
        "train": {"epochs": 8, "lr": 0.005, "seed": seed},
        "rollout": ROLLOUT,
        "evaluate": {"baseline": "trivial", "agreement_members": 0},  # TRIVIAL_BASELINE
    }
    path.write_text(yaml.safe_dump(config))
    return path


def train(config: Path, home: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "dnnops", "train", "-c", str(config), "--quiet", "--json"],
        env=subprocess_env(home),
        check=True,
        capture_output=True,
        timeout=300,
    )


@dataclass(frozen=True)
class Versions:
    home: Path
    config: Path
    """The project file the server runs with (v1's, with the rollout policy)."""


def three_versions(folder: Path) -> None:
    """Recipe: v1 (production), v2 as good (another seed), v3 broken (shuffled labels);
    v1's project file, with the rollout policy, is ``digits.yaml``."""
    home = folder / "home"
    train(project(folder, "builtin:digits", seed=1), home)
    train(project(folder, "builtin:digits", seed=2, name="v2.yaml"), home)
    frame = load_digits(as_frame=True).frame
    frame["target"] = np.random.default_rng(0).permutation(frame["target"].to_numpy())
    shuffled = folder / "shuffled.csv"
    frame.to_csv(shuffled, index=False)
    train(project(folder, str(shuffled), seed=3, name="v3.yaml"), home)


def copy_versions(built_folders: BuiltFolders, into: Path) -> Versions:
    folder = built_folders.copy(three_versions, into)
    return Versions(folder / "home", folder / "digits.yaml")


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory, built_folders: BuiltFolders) -> Versions:
    return copy_versions(built_folders, tmp_path_factory.mktemp("rollout") / "p")


@dataclass
class Traffic:
    """Clients sending 4 digits per request, each with its own routing key, and the true
    labels of every answer to /v1/feedback."""

    url: str
    token: str | None = None
    """Sent with every request (feedback needs a labels or admin token once one is set)."""
    statuses: list[int] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self, clients: int = 2) -> Traffic:
        for seed in range(clients):
            thread = threading.Thread(target=self._run, args=(seed,), daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _run(self, seed: int) -> None:
        digits = load_digits()
        rng = np.random.default_rng(seed)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        with httpx.Client(base_url=self.url, timeout=30, headers=headers) as http:
            while not self.stop.is_set():
                rows = rng.choice(len(digits.target), 4, replace=False)
                response = http.post(
                    "/v2/models/digits/infer",
                    json=_infer_body(digits.data[rows]),
                    headers={"x-routing-key": uuid.uuid4().hex},
                )
                self.statuses.append(response.status_code)
                if response.status_code != 200:
                    continue
                self.versions.append(response.headers["x-model-version"])
                ids = response.headers["x-prediction-id"].split(",")
                self.ids.extend(ids)
                labels = [
                    {"prediction_id": i, "label": int(digits.target[r])}
                    for i, r in zip(ids, rows, strict=True)
                ]
                labeled = http.post("/v1/feedback", json={"labels": labels})
                assert labeled.status_code == 200, labeled.text


def _infer_body(rows: np.ndarray) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": "input",
                "shape": list(rows.shape),
                "datatype": "FP32",
                "data": rows.ravel().tolist(),
            }
        ]
    }


def wait_for_rollout(url: str, status: set[str], timeout: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rollout = httpx.get(f"{url}/v1/endpoints/digits", timeout=10).json()["rollout"]
        if rollout is not None and rollout["status"] in status:
            return dict(rollout)
        time.sleep(0.2)
    raise AssertionError(f"the rollout never reached {status}: {rollout}")


def dnnops(versions: Versions, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dnnops", *args],
        env=subprocess_env(versions.home),
        capture_output=True,
        text=True,
        timeout=60,
    )
