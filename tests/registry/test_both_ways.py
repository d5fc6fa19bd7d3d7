"""The shared registry test set, run over the database and over a real server's
``/v1/registry`` routes (``DNNOPS_SERVER_URL``): the same calls give the same answers either
way; only the audit's actor differs, being the identity the server established."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dnnops.errors import RunNotFound, UsageError
from dnnops.home import resolve_home
from dnnops.registry.api_keys import KeyStore
from dnnops.registry.artifacts import open_store
from dnnops.registry.db import open_engine
from dnnops.registry.open import open_database_registry
from dnnops.registry.remote import RegistryServer, RemoteRegistry, RemoteRuns
from dnnops.registry.runs import Runs, RunStore
from dnnops.registry.versions import ModelRegistry, Registration, Registry, VersionNotFound
from tests.conftest import BuiltFolders
from tests.serve.conftest import Server, one_digits_model, start_server

CHUNK = 64 * 1024
"""Small upload and download pieces, so a 300 kB file travels in several."""


@dataclass(frozen=True)
class Served:
    server: Server
    home: Path
    keys: dict[str, str]


@dataclass(frozen=True)
class Side:
    registry: Registry
    runs: Runs
    actor: str


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, built_folders: BuiltFolders
) -> Iterator[Served]:
    """A server on a home with digits@1, and keys: a deployer, a reader, and a deployer
    limited to the model ``fraud``."""
    folder = built_folders.copy(one_digits_model, tmp_path_factory.mktemp("both") / "p")
    home = folder / "home"
    store = KeyStore(open_database_registry(resolve_home(home)).engine)
    keys = {
        "deployer": store.create("ci", "deployer")[0],
        "reader": store.create("laptop", "reader")[0],
        "fraud": store.create("fraud-team", "deployer", model="fraud")[0],
    }
    server = start_server(home, "--model", "digits@production", env={"DNNOPS_ADMIN_TOKEN": ""})
    yield Served(server, home, keys)
    server.stop()


def remote(served: Served, key: str | None = "deployer") -> RemoteRegistry:
    secret = served.keys[key] if key else None
    return RemoteRegistry(RegistryServer(served.server.url, secret), chunk_bytes=CHUNK)


@pytest.fixture(params=["database", "http"])
def side(request: pytest.FixtureRequest, tmp_path: Path) -> Side:
    if request.param == "database":
        engine = open_engine(f"sqlite:///{tmp_path / 'meta.db'}")
        registry = ModelRegistry(engine, open_store(str(tmp_path / "artifacts")), actor="tester")
        return Side(registry, RunStore(engine), "tester")
    served: Served = request.getfixturevalue("served")
    client = remote(served)
    return Side(client, RemoteRuns(client.server), "key:ci")


def fresh_name() -> str:
    return f"m-{uuid.uuid4().hex[:10]}"


def request_for(model: str, payload: bytes = b"w", **files: bytes) -> Registration:
    return Registration(
        model=model,
        source="imported",
        files={"weights.bin": payload, **files},
        manifest={"classes": [0, 1], "task": "classification"},
        metrics={"accuracy": 0.9},
        gates_passed=True,
        dataset={"sha256": "d" * 64, "source": "tickets.csv", "rows": 40, "schema": {}},
    )


def test_versions_are_consecutive_aliases_move_and_the_audit_names_who(side: Side) -> None:
    registry, name = side.registry, fresh_name()
    first = registry.register(request_for(name, b"a"))
    second = registry.register(request_for(name, b"b"))
    assert (first.version, second.version) == (1, 2)
    assert first.dataset_sha256 == "d" * 64 and first.metrics == {"accuracy": 0.9}
    registry.set_alias(name, "production", 1)
    third = registry.register(request_for(name, b"c"))
    assert third.parent_version == 1  # descends from the production version
    registry.set_alias(name, "production", 3, reason="promoted")
    assert registry.resolve(name, "production").version == 3
    assert registry.resolve(name, 2).version == 2
    assert registry.resolve_ref(f"{name}@production").aliases == ["production"]
    assert registry.aliases(name) == {"production": 3}
    assert [r.version for r in registry.versions(name)] == [3, 2, 1]
    listed = {m["name"]: m for m in registry.models()}[name]
    assert listed == {"name": name, "latest_version": 3, "aliases": {"production": 3}}
    registry.set_status(name, 2, "failed", reason="a bad canary")
    assert registry.resolve(name, 2).status == "failed"
    registry.audit("replay", name, {"version": 3, "passed": True})
    log = registry.audit_log(name)
    moves = [e["details"] for e in log if e["action"] == "alias"]
    assert moves[0] == {"alias": "production", "from": 1, "to": 3, "reason": "promoted"}
    assert [e["action"] for e in log].count("register") == 3
    assert log[0]["action"] == "replay"
    assert {e["actor"] for e in log} == {side.actor}


def test_files_travel_whole_checked_and_verified(side: Side) -> None:
    registry, name = side.registry, fresh_name()
    weights = os.urandom(300_000)  # several upload and download pieces over HTTP
    record = registry.register(request_for(name, weights, **{"notes.txt": b"hello"}))
    manifest = registry.manifest(record)
    assert (manifest["model"], manifest["version"]) == (name, 1)
    assert set(manifest["files"]) == {"weights.bin", "notes.txt"}
    assert manifest["files"]["weights.bin"]["size"] == 300_000
    assert registry.file(record, manifest, "weights.bin") == weights
    assert registry.verify(record).ok
    attached = registry.attach(record, "model.int8.onnx", b"int8 graph", fields={"int8": {"x": 1}})
    after = registry.manifest(attached)
    assert after["int8"] == {"x": 1}
    assert registry.file(attached, after, "model.int8.onnx") == b"int8 graph"
    assert attached.manifest_sha256 != record.manifest_sha256
    assert registry.resolve(name, 1).manifest_sha256 == attached.manifest_sha256


def test_unknown_names_and_bad_requests_give_the_same_errors(side: Side) -> None:
    registry, name = side.registry, fresh_name()
    registry.register(request_for(name))
    with pytest.raises(VersionNotFound, match="no model 'nope-x'"):
        registry.resolve("nope-x", "1")
    with pytest.raises(VersionNotFound, match="no version 9"):
        registry.resolve(name, "9")
    with pytest.raises(VersionNotFound, match=f"dnnops models alias {name} 1 production"):
        registry.resolve(name, "production")
    with pytest.raises(VersionNotFound, match="no model 'nope-x'"):
        registry.versions("nope-x")
    with pytest.raises(VersionNotFound, match="no version 7"):
        registry.set_alias(name, "production", 7)
    with pytest.raises(UsageError, match="confused with a version number"):
        registry.set_alias(name, "12", 1)
    with pytest.raises(UsageError, match="plain file name"):
        registry.register(request_for(name, **{".hidden": b"x"}))
    with pytest.raises(UsageError, match="not a valid name"):
        registry.register(request_for("bad name!"))
    assert [r.version for r in registry.versions(name)] == [1]  # nothing half-registered


def test_runs_are_recorded_and_read_back(side: Side, tmp_path: Path) -> None:
    runs, project, run_id = side.runs, fresh_name(), uuid.uuid4().hex[:12]
    runs.create(run_id, project, {"lr": 0.01}, dataset_sha256="e" * 64, run_dir=tmp_path)
    runs.epoch(run_id, 1, {"val_accuracy": 0.5})
    runs.epoch(run_id, 2, {"val_accuracy": 0.75})
    runs.checkpoint(run_id, 20, 2, path=tmp_path / "ckpt-20.pt", sha256="f" * 64)
    runs.status(run_id, "finished", metrics={"val_accuracy": 0.75}, weights_sha256="a" * 64)
    record = runs.get(run_id)
    assert (record.project, record.status, record.params) == (project, "finished", {"lr": 0.01})
    assert record.epochs == [{"val_accuracy": 0.5}, {"val_accuracy": 0.75}]
    assert record.checkpoints[0]["step"] == 20 and record.weights_sha256 == "a" * 64
    assert record.ended_at is not None
    assert [r.id for r in runs.list(project)] == [run_id]
    with pytest.raises(RunNotFound, match="no run 'nope'"):
        runs.get("nope")
    with pytest.raises(RunNotFound):
        runs.epoch("nope", 1, {"val_accuracy": 0.1})
