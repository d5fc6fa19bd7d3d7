"""The registry's database side, against SQLite and a real PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dnnops.errors import UsageError
from dnnops.registry.artifacts import open_store
from dnnops.registry.db import open_engine
from dnnops.registry.versions import ModelRegistry, Registration, VersionNotFound, parse_ref

REGISTER_SCRIPT = """
import sys
from dnnops.registry.artifacts import open_store
from dnnops.registry.db import open_engine
from dnnops.registry.versions import ModelRegistry, Registration
registry = ModelRegistry(open_engine(sys.argv[1]), open_store(sys.argv[2]), actor=sys.argv[3])
numbers = []
for i in range(int(sys.argv[4])):
    files = {"x.bin": f"{sys.argv[3]}{i}".encode()}
    request = Registration(model="racy", source="imported", files=files, manifest={}, metrics={},
                           gates_passed=None)
    numbers.append(registry.register(request).version)
print(",".join(map(str, numbers)))
"""


def _registry(db_url: str, tmp_path: Path, actor: str = "tester") -> ModelRegistry:
    return ModelRegistry(open_engine(db_url), open_store(str(tmp_path / "artifacts")), actor=actor)


def _request(
    model: str = "m", payload: bytes = b"w", gates_passed: bool | None = True
) -> Registration:
    return Registration(
        model=model,
        source="imported",
        files={"weights.bin": payload},
        manifest={"classes": [0, 1]},
        metrics={"accuracy": 0.9},
        gates_passed=gates_passed,
    )


def test_versions_are_consecutive_and_aliases_move_with_an_audit_trail(
    db_url: str, tmp_path: Path
) -> None:
    registry = _registry(db_url, tmp_path)
    first = registry.register(_request(payload=b"a"))
    second = registry.register(_request(payload=b"b"))
    assert (first.version, second.version) == (1, 2)
    registry.set_alias("m", "production", 1)
    third = registry.register(_request(payload=b"c"))
    assert third.parent_version == 1  # descends from the production version
    registry.set_alias("m", "production", 3, reason="promoted")
    assert registry.resolve("m", "production").version == 3
    assert registry.resolve("m", "2").version == 2
    assert registry.resolve_ref("m@production").aliases == ["production"]
    moves = [e["details"] for e in registry.audit_log("m") if e["action"] == "alias"]
    assert moves[0] == {"alias": "production", "from": 1, "to": 3, "reason": "promoted"}
    assert moves[1]["from"] is None
    assert all(e["actor"] == "tester" for e in registry.audit_log("m"))
    assert [e["action"] for e in registry.audit_log("m")].count("register") == 3


def test_manifest_lists_files_and_verifies(db_url: str, tmp_path: Path) -> None:
    registry = _registry(db_url, tmp_path)
    record = registry.register(_request())
    manifest = registry.manifest(record)
    assert manifest["version"] == 1 and manifest["model"] == "m"
    assert set(manifest["files"]) == {"weights.bin"}
    assert registry.verify(record).ok


def test_unknown_names_give_clear_errors(db_url: str, tmp_path: Path) -> None:
    registry = _registry(db_url, tmp_path)
    registry.register(_request())
    with pytest.raises(VersionNotFound, match="no model 'nope'"):
        registry.resolve("nope", "1")
    with pytest.raises(VersionNotFound, match="no version 9"):
        registry.resolve("m", "9")
    with pytest.raises(VersionNotFound, match="no alias 'production'"):
        registry.resolve("m", "production")
    with pytest.raises(UsageError):
        registry.set_alias("m", "../evil", 1)
    with pytest.raises(UsageError, match="NAME@REF"):
        parse_ref("m")


def test_bad_artifact_names_are_refused(db_url: str, tmp_path: Path) -> None:
    registry = _registry(db_url, tmp_path)
    bad = Registration(
        model="m",
        source="imported",
        files={"../escape": b"x"},
        manifest={},
        metrics={},
        gates_passed=None,
    )
    with pytest.raises(UsageError, match="plain file name"):
        registry.register(bad)


def test_two_processes_registering_at_once_get_distinct_consecutive_versions(
    db_url: str, tmp_path: Path
) -> None:
    open_engine(db_url)  # migrate once, so both writers start on a ready schema
    artifacts = str(tmp_path / "artifacts")
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", REGISTER_SCRIPT, db_url, artifacts, name, "15"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("alpha", "beta")
    ]
    outputs = [w.communicate(timeout=180) for w in workers]
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
        assert "locked" not in err
    numbers = sorted(int(n) for out, _ in outputs for n in out.strip().split(","))
    assert numbers == list(range(1, 31))
    registry = _registry(db_url, tmp_path)
    assert [r.version for r in registry.versions("racy")] == list(range(30, 0, -1))
    actors = json.dumps(registry.audit_log("racy"))
    assert "alpha" in actors and "beta" in actors
