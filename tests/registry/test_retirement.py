"""Versions with owners and an end: a model's owners and card text (audited); archive
(kept, never served or aliased) and back; delete, refused while an alias or an unfinished
rollout points at the version; garbage collection of the artifacts no remaining version
names (a dry run first, young files kept); the model card from what the registry holds;
and an endpoint's changed settings audited at a server's start."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import dnnops
from dnnops.config import ProjectConfig
from dnnops.errors import UsageError
from dnnops.home import resolve_home
from dnnops.registry.loader import load_version
from dnnops.registry.open import open_registry
from dnnops.registry.retirement import (
    VersionInUse,
    archive,
    collect_garbage,
    delete_version,
    describe_model,
    model_info,
    unarchive,
)
from dnnops.registry.rollouts import RolloutRows
from dnnops.registry.versions import ModelRegistry, VersionNotFound
from dnnops.serve.config_audit import audit_config_change
from tests.conftest import BuiltFolders, CliResult
from tests.serve.conftest import one_digits_model


def churn_versions(home: Path, count: int) -> ModelRegistry:
    """``count`` versions of a churn classifier from a user's own loop, each its own
    weights (so each has files of its own in the store)."""
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {
            "tenure": rng.normal(20, 5, 60),
            "spend": rng.normal(50, 9, 60),
            "churned": rng.integers(0, 2, 60),
        }
    )
    for seed in range(count):
        torch.manual_seed(seed)
        dnnops.log_model(
            torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)),
            name="churn",
            reference=reference,
            target="churned",
            classes=["stays", "leaves"],
            home=home,
        )
    return open_registry(resolve_home(home))


def test_archive_keeps_a_version_unservable_until_brought_back(tmp_path: Path) -> None:
    registry = churn_versions(tmp_path / "home", 2)
    registry.set_alias("churn", "production", 1)
    with pytest.raises(VersionInUse, match="alias production"):
        archive(registry, "churn", 1)
    registry.set_alias("churn", "production", 2)
    archive(registry, "churn", 1, reason="superseded")
    archived = registry.resolve("churn", 1)
    assert archived.status == "archived"
    with pytest.raises(UsageError, match="archived"):
        load_version(registry, archived)
    with pytest.raises(UsageError, match="unarchive"):
        registry.set_alias("churn", "candidate", 1)
    unarchive(registry, "churn", 1)
    assert load_version(registry, registry.resolve("churn", 1)).record.status == "ready"
    actions = [e["action"] for e in registry.audit_log("churn")]
    assert actions[:2] == ["unarchive", "archive"]


def test_a_deleted_versions_bytes_are_gone_and_a_referenced_one_is_refused(
    tmp_path: Path,
) -> None:
    registry = churn_versions(tmp_path / "home", 3)
    registry.set_alias("churn", "production", 2)
    RolloutRows(registry.engine).create(
        "churn", "churn", 3, baseline=2, mode="canary", steps=(10, 100), policy={}
    )
    with pytest.raises(VersionInUse, match="alias production"):
        delete_version(registry, "churn", 2)
    with pytest.raises(VersionInUse, match="rollout"):
        delete_version(registry, "churn", 3)

    doomed = registry.resolve("churn", 1)
    manifest = registry.manifest(doomed)
    shared = {
        e["sha256"]
        for v in (2, 3)
        for e in registry.manifest(registry.resolve("churn", v)).files.values()
    }
    own = {e["sha256"] for e in manifest.files.values()} - shared
    assert own, "its weights and graph are its own"
    delete_version(registry, "churn", 1, reason="a bad seed")
    with pytest.raises(VersionNotFound):
        registry.resolve("churn", 1)
    [entry] = [e for e in registry.audit_log("churn") if e["action"] == "delete"]
    assert entry["details"]["manifest_sha256"] == doomed.manifest_sha256

    young = collect_garbage(registry, dry_run=True)  # the default grace: an hour
    assert young.removed == [] and young.kept_young == len(own) + 1
    dry = collect_garbage(registry, dry_run=True, grace_s=0)
    assert set(dry.removed) == own | {doomed.manifest_sha256} and dry.bytes > 0
    assert all(_path(registry, d).exists() for d in dry.removed), "a dry run removes nothing"
    done = collect_garbage(registry, dry_run=False, grace_s=0)
    assert set(done.removed) == set(dry.removed)
    assert not any(_path(registry, d).exists() for d in done.removed)
    for version in (2, 3):
        assert registry.verify(registry.resolve("churn", version)).ok, "the rest intact"
    assert collect_garbage(registry, dry_run=True, grace_s=0).removed == []


def _path(registry: ModelRegistry, digest: str) -> Path:
    found = registry.store.local_path(digest)
    assert found is not None
    return found


def test_owners_and_card_text_are_audited_and_shown_on_the_card(
    tmp_path: Path,
    built_folders: BuiltFolders,
    cli: Callable[..., CliResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = built_folders.copy(one_digits_model, tmp_path / "p") / "home"
    monkeypatch.setenv("DNNOPS_HOME", str(home))
    done = cli(
        "models", "describe", "digits", "--owner", "ana@example.com", "--owner",
        "ml-platform", "--description", "Reads handwritten digits.",
        "--intended-use", "Sorting scanned forms.", "--limitations", "Not for signatures.",
    )  # fmt: skip
    assert done.code == 0, done.err
    registry = open_registry(resolve_home(home))
    info = model_info(registry, "digits")
    assert info["owners"] == ["ana@example.com", "ml-platform"]
    [entry] = [e for e in registry.audit_log("digits") if e["action"] == "describe"]
    assert entry["details"]["to"]["intended_use"] == "Sorting scanned forms."
    with pytest.raises(UsageError, match="card fields"):
        describe_model(registry, "digits", card={"price": "free"})

    card = json.loads(cli("models", "card", "digits@1", "--format", "json").out)
    record = registry.resolve("digits", 1)
    assert card["metrics"]["accuracy"] == record.metrics["accuracy"]
    assert card["owners"] == info["owners"] and card["limitations"] == "Not for signatures."
    assert card["data"]["dataset_sha256"] == record.dataset_sha256
    assert len(card["data"]["features"]) == 64 and card["data"]["test_rows"] > 0
    assert card["calibration"]["method"] in ("temperature", "isotonic")
    assert "trivial" in card["baselines"] and card["gates"]["passed"] == record.gates_passed
    out = tmp_path / "card.md"
    assert cli("models", "card", "digits@1", "--out", str(out)).code == 0
    text = out.read_text()
    for part in (
        "# Model card: digits v1",
        "## Intended use",
        "Sorting scanned forms.",
        "## Metrics (test split)",
        "| accuracy |",
        "## Calibration",
        "## Fairness",
    ):
        assert part in text, part  # fmt: skip
    refused = cli("models", "delete", "digits@1")
    assert refused.code == 2 and "--yes" in refused.err
    by_alias = cli("models", "archive", "digits@production")
    assert by_alias.code == 2 and "by number" in by_alias.err


def test_an_endpoints_changed_settings_are_audited_once_with_urls_as_digests(
    tmp_path: Path,
) -> None:
    registry = churn_versions(tmp_path / "home", 1)
    raw = {
        "name": "churn",
        "data": {"source": "churn.csv", "target": "churned"},
        "monitor": {"webhook_url": "https://hooks.example.com/T000/secret"},
    }
    first = audit_config_change(registry, ProjectConfig.model_validate(raw))
    assert "rollout.steps" in first and "monitor.webhook_url" in first
    assert audit_config_change(registry, ProjectConfig.model_validate(raw)) == []
    raw["rollout"] = {"steps": [5, 50, 100]}
    assert audit_config_change(registry, ProjectConfig.model_validate(raw)) == ["rollout.steps"]
    entries = [e for e in registry.audit_log("churn") if e["action"] == "endpoint_config"]
    assert len(entries) == 2 and entries[0]["details"]["settings"]["rollout.steps"] == [5, 50, 100]
    assert "secret" not in json.dumps(entries), "a webhook URL is kept as its digest"


def test_gc_sweeps_uploads_a_client_abandoned_and_keeps_one_still_arriving(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    home = tmp_path / "home"
    churn_versions(home, 1)
    uploads = home / "uploads"
    uploads.mkdir()
    abandoned, arriving = uploads / f"{'a' * 64}.part", uploads / f"{'b' * 64}.part"
    abandoned.write_bytes(b"x" * 1000)
    arriving.write_bytes(b"y" * 10)
    two_hours_ago = time.time() - 7200
    os.utime(abandoned, (two_hours_ago, two_hours_ago))
    dry = cli("models", "gc", "--home", str(home), "--json")
    assert dry.code == 0, dry.err
    assert dry.json()["abandoned_uploads"] == {"count": 1, "bytes": 1000}
    assert abandoned.exists(), "a dry run removes nothing"
    done = cli("models", "gc", "--apply", "--home", str(home))
    assert done.code == 0, done.err
    assert "removed 1 abandoned upload(s), 1000 bytes" in done.out
    assert not abandoned.exists() and arriving.exists()
