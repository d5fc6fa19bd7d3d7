"""The shared registry test set, run over the database and over a real server's
``/v1/registry`` routes (``DNNOPS_SERVER_URL``): the same calls give the same answers either
way; only the audit's actor differs, being the identity the server established."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from dnnops.errors import RunNotFound, UsageError
from dnnops.home import resolve_home
from dnnops.registry.api_keys import KeyStore
from dnnops.registry.artifacts import open_store
from dnnops.registry.db import open_engine
from dnnops.registry.open import open_database_registry
from dnnops.registry.remote import RegistryServer, RemoteRegistry, RemoteRuns, ServerRefused
from dnnops.registry.runs import Runs, RunStore
from dnnops.registry.versions import ModelRegistry, Registration, Registry, VersionNotFound
from tests.conftest import BuiltFolders, subprocess_env
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


# -- over HTTP only: uploads, roles, and the CLI and Python API through the server ----------


def test_an_interrupted_upload_resumes_and_bytes_that_miss_their_digest_store_nothing(
    served: Served,
) -> None:
    url, key = f"{served.server.url}/v1/registry", served.keys["deployer"]
    auth = {"Authorization": f"Bearer {key}"}
    data = os.urandom(200_000)
    digest = hashlib.sha256(data).hexdigest()

    def chunk(offset: int, body: bytes, length: int = len(data)) -> httpx.Response:
        headers = {**auth, "Upload-Offset": str(offset), "Upload-Length": str(length)}
        return httpx.put(f"{url}/uploads/{digest}", content=body, headers=headers)

    assert chunk(0, data[:50_000]).json() == {"sha256": digest, "received": 50_000, "stored": False}
    wrong = chunk(10, data[10:20])  # a client that lost track is told where to resume
    assert wrong.status_code == 409 and wrong.json()["received"] == 50_000
    overrun = chunk(50_000, data[50_000:], length=60_000)
    assert overrun.status_code == 422 and "overruns" in overrun.json()["error"]
    client = remote(served)
    assert not client.store.exists(digest)
    assert client.store.put(data) == digest  # resumes at 50 000
    assert client.store.exists(digest)
    assert client.store.get(digest) == data
    part = httpx.get(f"{url}/artifacts/{digest}", headers={**auth, "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["content-range"] == "bytes 100-199/200000"

    forged = os.urandom(1000)
    claimed = hashlib.sha256(b"something else").hexdigest()
    headers = {**auth, "Upload-Offset": "0", "Upload-Length": "1000"}
    refused = httpx.put(f"{url}/uploads/{claimed}", content=forged, headers=headers)
    assert refused.status_code == 422 and "nothing was stored" in refused.json()["error"]
    assert not client.store.exists(claimed)
    assert httpx.get(f"{url}/uploads/{claimed}", headers=auth).json()["received"] == 0
    bad = httpx.get(f"{url}/artifacts/..%2F..%2Fdnnops.db", headers=auth)
    assert bad.status_code in (400, 404)
    assert not list((served.home / "uploads").glob("*.part"))
    assert (served.home / "uploads").stat().st_mode & 0o777 == 0o700


def test_roles_decide_who_reads_and_writes_and_the_audit_names_the_key(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = fresh_name()
    monkeypatch.setenv("DNNOPS_ACTOR", "mallory")  # what a client claims counts for nothing
    deployer, reader, fraud = remote(served), remote(served, "reader"), remote(served, "fraud")
    deployer.register(request_for(name))
    assert reader.resolve(name, 1).version == 1
    assert (
        reader.file(
            reader.resolve(name, 1), reader.manifest(reader.resolve(name, 1)), "weights.bin"
        )
        == b"w"
    )
    with pytest.raises(ServerRefused, match="needs the deployer role"):
        reader.register(request_for(name, b"r"))
    with pytest.raises(ServerRefused, match="needs the deployer role"):
        reader.set_alias(name, "production", 1)
    with pytest.raises(ServerRefused, match="of " + name):
        fraud.set_alias(name, "production", 1)
    with pytest.raises(ServerRefused):
        fraud.resolve(name, 1)
    assert fraud.register(request_for("fraud")).model == "fraud"
    assert {m["name"] for m in fraud.models()} == {"fraud"}  # only what the key may read
    assert {e["model"] for e in fraud.audit_log()} == {"fraud"}
    with pytest.raises(ServerRefused, match="DNNOPS_API_KEY"):
        remote(served, None).models()  # keys are issued: reads need one too
    actors = {e["actor"] for e in deployer.audit_log(name)}
    assert actors == {"key:ci"}
    assert {e["actor"] for e in deployer.audit_log("fraud")} == {"key:fraud-team"}


def test_the_cli_and_the_python_api_go_through_the_server(served: Served, tmp_path: Path) -> None:
    laptop = tmp_path / "laptop"  # no database here: only the server's address and a key
    env = {
        **subprocess_env(laptop),
        "DNNOPS_SERVER_URL": served.server.url,
        "DNNOPS_API_KEY": served.keys["deployer"],
    }

    def dnnops(*args: str, environment: dict[str, str] = env) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dnnops", *args],
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=served.home.parent,
        )

    here = subprocess_env(served.home)
    for command in (["models", "list", "--json"], ["models", "show", "digits", "--json"]):
        through, local = dnnops(*command), dnnops(*command, environment=here)
        assert through.returncode == 0, through.stderr
        assert json.loads(through.stdout) == json.loads(local.stdout)
    verified = dnnops("models", "verify", "digits@production")
    assert verified.returncode == 0, verified.stderr
    trained = dnnops("train", "-c", "digits.yaml", "--quiet", "--json")
    assert trained.returncode == 0, trained.stderr
    version = json.loads(trained.stdout)["version"]
    registry = open_database_registry(resolve_home(served.home))
    record = registry.resolve("digits", version)
    assert record.run_id is not None and registry.verify(record).ok
    runs = json.loads(dnnops("runs", "list", "--json").stdout)
    assert record.run_id in {r["id"] for r in runs}
    moved = dnnops("models", "alias", "digits", str(version), "staging")
    assert moved.returncode == 0, moved.stderr
    assert registry.aliases("digits")["staging"] == version
    refused = dnnops("keys", "list")
    assert refused.returncode == 2 and "DNNOPS_SERVER_URL does not reach" in refused.stderr
    assert not laptop.exists() or not (laptop / "dnnops.db").exists()

    script = (
        "import json, sys, numpy as np, torch, dnnops\n"
        "from sklearn.datasets import load_digits\n"
        "x = load_digits().data[:20].astype('float32')\n"
        "model = dnnops.load('digits@1')\n"
        "net = torch.nn.Sequential(torch.nn.Linear(64, 10))\n"
        "v = dnnops.log_model(net, name='digits-own', reference=x, aliases=['production'])\n"
        "load_digits(as_frame=True).frame.head(300).to_csv(sys.argv[1], index=False)\n"
        "scored = dnnops.Project('digits.yaml').evaluate('digits@1', sys.argv[1])\n"
        "labels = [int(p) for p in model.predict(x)]\n"
        "print(json.dumps({'labels': labels, 'version': v, 'metrics': scored['metrics']}))\n"
    )
    through = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "a.csv")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=served.home.parent,
    )
    local = subprocess.run(
        [
            sys.executable,
            "-c",
            script.replace("digits-own", "digits-mine"),
            str(tmp_path / "b.csv"),
        ],
        env=here,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=served.home.parent,
    )
    assert through.returncode == 0, through.stderr
    assert local.returncode == 0, local.stderr
    answered, expected = json.loads(through.stdout), json.loads(local.stdout)
    assert answered["labels"] == expected["labels"]
    scores = {k: v for k, v in answered["metrics"].items() if not k.startswith("latency")}
    assert scores == {k: v for k, v in expected["metrics"].items() if not k.startswith("latency")}
    assert scores["accuracy"] > 0.8
    assert registry.resolve("digits-own", "production").version == 1
    assert [e["actor"] for e in registry.audit_log("digits-own")] == ["key:ci"] * 2
