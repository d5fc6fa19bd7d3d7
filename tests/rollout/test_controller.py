"""The rollout controller driven in-process through its port: a fake server (routing kept
in real ``Endpoint`` objects), a fake clock, and traffic written to a real prediction log;
the registry, the rollout store and the alert store are real (SQLite)."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import torch

import dnnops
from dnnops.config import KpiConfig, RolloutConfig
from dnnops.home import resolve_home
from dnnops.inference.logger import PredictionLogger
from dnnops.registry.alerts import AlertStore
from dnnops.registry.open import open_registry
from dnnops.registry.versions import ModelRegistry, VersionRecord
from dnnops.rollout.begin import begin_rollout
from dnnops.rollout.controller import RolloutController
from dnnops.rollout.ports import Traffic
from dnnops.rollout.store import RolloutStore
from dnnops.serve.runtime import Endpoint

LOADED: Any = object()
"""What the fake server keeps for a loaded version (the controller only checks presence)."""
POLICY = RolloutConfig.model_validate(
    {"interval": "10s", "min_requests": 20, "steps": [50, 100], "failure_threshold": 2}
)


@dataclass
class FakeServer:
    """The server side of the port: routing in memory, loads and retirements recorded."""

    registry: ModelRegistry
    logs_dir: Path
    webhook_url: str | None = None
    runbooks: str = "https://runbooks.example/{page}"
    kpis: tuple[KpiConfig, ...] = ()
    routes: dict[str, Endpoint] = field(default_factory=dict)
    loaded: list[tuple[str, str, bool]] = field(default_factory=list)
    retired: list[tuple[str, str]] = field(default_factory=list)
    weights: dict[str, float] = field(default_factory=dict)
    failed_ticks: int = 0

    def traffic(self, endpoint: str) -> Traffic | None:
        return self.routes.get(endpoint)

    def all_traffic(self) -> list[Traffic]:
        return list(self.routes.values())

    def leads(self) -> bool:
        return True

    async def follow_siblings(self) -> None:
        return None

    async def load(self, endpoint: str, record: VersionRecord, make_live: bool) -> None:
        route = self.routes[endpoint]
        route.versions[str(record.version)] = LOADED
        if make_live:
            route.live = str(record.version)
        self.loaded.append((endpoint, str(record.version), make_live))

    async def load_everywhere(self, endpoint: str, record: VersionRecord, make_live: bool) -> None:
        await self.load(endpoint, record, make_live)

    def retire_later(self, endpoint: str, version: str) -> None:
        self.retired.append((endpoint, version))

    def observe_weight(self, endpoint: str, weight: float) -> None:
        self.weights[endpoint] = weight

    def observe_tick(self, seconds: float, failed: bool) -> None:
        self.failed_ticks += failed


class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


Setup = tuple[FakeServer, RolloutController, Clock]


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two versions of a small classifier: v1 production, v2 the candidate."""
    home = tmp_path_factory.mktemp("controller") / "home"
    x = np.random.default_rng(0).normal(size=(200, 4)).astype("float32")
    for seed, aliases in ((1, ["production"]), (2, [])):
        torch.manual_seed(seed)
        module = torch.nn.Sequential(torch.nn.Linear(4, 3))
        dnnops.log_model(module, name="toy", reference=x, home=home, aliases=aliases)
    return home


def controlled(registered: Path, folder: Path) -> Setup:
    """A fresh copy of the registry, v1 live on endpoint ``toy``, and a clock well behind
    the machine's (log segments are listed by their real modification time)."""
    home = folder / "home"
    shutil.copytree(registered, home)
    registry = open_registry(resolve_home(home))
    clock = Clock(time.time() - 1000.0)
    server = FakeServer(registry, home / "logs")
    server.routes["toy"] = Endpoint("toy", live="1")
    server.routes["toy"].versions["1"] = LOADED
    store = RolloutStore(registry.engine, clock=clock)
    controller = RolloutController(server, store, AlertStore(registry.engine), clock=clock)
    return server, controller, clock


@pytest.fixture
def setup(registered: Path, tmp_path: Path) -> Iterator[Setup]:
    made = controlled(registered, tmp_path)
    yield made
    made[0].registry.engine.dispose()


def traffic(
    logs: Path, version: str, requests: int, at: float, status: int = 200, sure: float = 1.0
) -> None:
    """``requests`` answered (or failed) predictions of ``version`` made at ``at``, in the
    records a server writes (the fake clock's time, not the machine's), each giving its
    class the probability ``sure``."""
    rng = np.random.default_rng(int(version))
    records = []
    for index in range(requests):
        record: dict[str, Any] = {
            "id": f"{version}-{at}-{index}",
            "ts": at,
            "endpoint": "toy",
            "model": "toy",
            "version": version,
            "status": status,
            "latency_ms": 4.0,
        }
        if status == 200:
            label = int(rng.integers(0, 3))
            rest = (1.0 - sure) / 2
            probabilities = [sure if c == label else rest for c in range(3)]
            record |= {"output": label, "probabilities": probabilities}
        records.append(orjson.dumps(record))
    logger = PredictionLogger(logs).start()
    try:
        logger.predictions.append(records)
    finally:
        logger.close()


def test_a_good_canary_walks_its_steps_and_is_promoted(setup: Setup) -> None:
    server, controller, clock = setup
    rollout = begin_rollout(
        controller.store, server.registry, "toy", model="toy", ref="2", policy=POLICY
    )
    asyncio.run(controller.tick())
    route = server.routes["toy"]
    assert server.loaded == [("toy", "2", False)]
    assert (route.canary, route.canary_weight, server.weights["toy"]) == ("2", 50.0, 50)

    asyncio.run(controller.tick())  # not due yet: nothing judged
    assert controller.store.get(rollout.id).history == ()
    for step in (0, 1):
        traffic(server.logs_dir, "1", 30, at=clock.now + 1)
        traffic(server.logs_dir, "2", 30, at=clock.now + 1)
        clock.now += 11.0
        asyncio.run(controller.tick())
        judged = controller.store.get(rollout.id)
        assert judged.history[-1]["verdict"] == "pass", judged.history[-1]
        if step == 0:
            assert (judged.step, route.canary_weight) == (1, 100.0)
    assert controller.store.get(rollout.id).status == "promoted"
    assert route.live == "2" and route.canary is None
    assert server.retired == [("toy", "1")]
    assert server.registry.resolve("toy", "production").version == 2
    assert server.failed_ticks == 0 and server.weights["toy"] == 0


def test_a_failing_canary_is_rolled_back_with_a_page(setup: Setup) -> None:
    server, controller, clock = setup
    rollout = begin_rollout(
        controller.store, server.registry, "toy", model="toy", ref="2", policy=POLICY
    )
    asyncio.run(controller.tick())
    for _ in range(POLICY.failure_threshold):
        traffic(server.logs_dir, "1", 30, at=clock.now + 1)
        traffic(server.logs_dir, "2", 30, at=clock.now + 1, status=500)
        clock.now += 11.0
        asyncio.run(controller.tick())
    ended = controller.store.get(rollout.id)
    assert ended.status == "rolled_back" and ended.step == 0
    assert [c["verdict"] for c in ended.history] == ["fail", "fail"]
    route = server.routes["toy"]
    assert route.live == "1" and route.canary is None
    assert server.registry.resolve("toy", "2").status == "failed"
    assert server.registry.resolve("toy", "production").version == 1
    [page] = AlertStore(server.registry.engine).list()
    assert page.kind == "rollout" and page.severity == "page"
    assert page.details["runbook_url"] == "https://runbooks.example/rollback"
    assert ("toy", "2") in server.retired


def test_an_abort_elsewhere_is_followed_without_deciding_again(setup: Setup) -> None:
    server, controller, clock = setup
    rollout = begin_rollout(
        controller.store, server.registry, "toy", model="toy", ref="2", policy=POLICY
    )
    asyncio.run(controller.tick())
    assert server.routes["toy"].canary == "2"
    controller.store.abort("toy", "operator said so")  # the CLI, in another process
    clock.now += 11.0
    asyncio.run(controller.tick())
    route = server.routes["toy"]
    assert route.canary is None and route.live == "1"
    assert controller.store.get(rollout.id).status == "aborted"
    assert server.registry.resolve("toy", "2").status != "failed", "an abort is not a failure"
    assert AlertStore(server.registry.engine).list() == []


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two versions of one linear classifier logged with labels: each gets a calibrator
    (fitted on the labelled reference rows), so its accuracy can be estimated."""
    home = tmp_path_factory.mktemp("calibrated") / "home"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4)).astype("float32")
    weights = rng.normal(size=(4, 3)).astype("float32")
    y = (x @ weights + rng.normal(0, 0.5, (400, 3))).argmax(axis=1)
    for aliases in (["production"], []):
        module = torch.nn.Linear(4, 3)
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(weights.T.copy()))
            module.bias.zero_()
        dnnops.log_model(module, name="toy", reference=x, target=y, home=home, aliases=aliases)
    return home


def test_a_canary_less_sure_of_itself_is_rolled_back_before_any_label(
    calibrated: Path, tmp_path: Path
) -> None:
    server, controller, clock = controlled(calibrated, tmp_path)
    registry, store = server.registry, controller.store
    policy = POLICY.model_copy(
        update={"max_estimated_accuracy_drop": 0.05, "max_prediction_divergence": 1.0}
    )
    rollout = begin_rollout(store, registry, "toy", model="toy", ref="2", policy=policy)
    asyncio.run(controller.tick())
    for _ in range(policy.failure_threshold):
        traffic(server.logs_dir, "1", 60, at=clock.now + 1, sure=0.95)
        traffic(server.logs_dir, "2", 60, at=clock.now + 1, sure=0.4)
        clock.now += 11.0
        asyncio.run(controller.tick())
    ended = store.get(rollout.id)
    assert ended.status == "rolled_back", ended.history
    gates = {g["gate"]: g for g in ended.history[-1]["gates"]}
    assert gates["estimated_accuracy_drop"]["outcome"] == "fail"
    assert gates["accuracy_drop"]["outcome"] == "skip", "no label arrived"
    registry.engine.dispose()
