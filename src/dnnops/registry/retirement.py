"""How a version ends, and who a model belongs to.

A model has owners and a card (description, intended use, limitations). A version can be
archived (kept, never served, never aliased) and brought back, or deleted: refused while
an alias or an unfinished rollout points at it, and its row gone with its audit kept.
Its files stay in the content-addressed store until garbage collection removes every
artifact no remaining version's manifest names (a dry run lists them first)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dnnops.errors import UsageError
from dnnops.registry.tables import AliasRow, ModelRow, RolloutRow, VersionRow
from dnnops.registry.versions import ModelRegistry, VersionNotFound

ARCHIVED = "archived"
UNFINISHED = ("running", "awaiting_approval")
"""Rollout statuses that still need both of their versions."""
CARD_FIELDS = ("description", "intended_use", "limitations")
GRACE_S = 3600.0
"""An unreferenced artifact younger than this is kept: a registration stores its files
before its row, and must not lose them to a collection that runs in between."""


class VersionInUse(UsageError):
    """The version is still pointed at; the message says by what and how to free it."""


def describe_model(
    registry: ModelRegistry,
    model: str,
    *,
    owners: list[str] | None = None,
    card: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Set a model's owners and card fields (those given; an empty string clears one)."""
    unknown = sorted(set(card or {}) - set(CARD_FIELDS))
    if unknown:
        raise UsageError(f"model card fields {unknown}: use {', '.join(CARD_FIELDS)}")
    with Session(registry.engine) as session, session.begin():
        row = _model(session, model)
        before = model_details(row)
        if owners is not None:
            row.owners = sorted(set(owners))
        if card:
            merged = {**(row.card or {}), **card}
            row.card = {k: v for k, v in merged.items() if v}
        after = model_details(row)
        registry.record_audit(session, "describe", model, details={"from": before, "to": after})
        return after


def model_info(registry: ModelRegistry, model: str) -> dict[str, Any]:
    with Session(registry.engine) as session:
        return model_details(_model(session, model))


def model_details(row: ModelRow) -> dict[str, Any]:
    return {
        "owners": list(row.owners or []),
        **{k: (row.card or {}).get(k, "") for k in CARD_FIELDS},
    }


def archive(registry: ModelRegistry, model: str, version: int, *, reason: str = "") -> None:
    """Keep the version, never serve it: refused while an alias or a rollout needs it."""
    with Session(registry.engine) as session, session.begin():
        row = registry.version_row(session, model, version)
        _free(session, model, version, doing="archive")
        previous, row.status = row.status, ARCHIVED
        registry.record_audit(
            session,
            "archive",
            model,
            details={"version": version, "from": previous, "reason": reason},
        )


def unarchive(registry: ModelRegistry, model: str, version: int, *, reason: str = "") -> None:
    with Session(registry.engine) as session, session.begin():
        row = registry.version_row(session, model, version)
        if row.status != ARCHIVED:
            raise UsageError(f"{model}@{version} is not archived (it is {row.status})")
        row.status = "ready"
        registry.record_audit(
            session, "unarchive", model, details={"version": version, "reason": reason}
        )


def delete_version(registry: ModelRegistry, model: str, version: int, *, reason: str = "") -> None:
    """Remove the version's row (its audit stays); its files go at the next collection."""
    with Session(registry.engine) as session, session.begin():
        row = registry.version_row(session, model, version)
        _free(session, model, version, doing="delete")
        details = {
            "version": version,
            "manifest_sha256": row.manifest_sha256,
            "status": row.status,
            "reason": reason,
        }
        session.delete(row)
        registry.record_audit(session, "delete", model, details=details)


@dataclass
class Collection:
    """What a garbage collection found (and removed, unless a dry run)."""

    removed: list[str] = field(default_factory=list)
    bytes: int = 0
    kept_young: int = 0
    referenced: int = 0
    dry_run: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def collect_garbage(
    registry: ModelRegistry, *, dry_run: bool = True, grace_s: float = GRACE_S
) -> Collection:
    """Remove the artifacts that no version's manifest names (nor the manifests
    themselves), older than ``grace_s``."""
    referenced = referenced_digests(registry)
    found = Collection(referenced=len(referenced), dry_run=dry_run)
    now = time.time()
    for artifact in registry.store.stored():
        if artifact.digest in referenced:
            continue
        if artifact.modified is not None and now - artifact.modified < grace_s:
            found.kept_young += 1
            continue
        found.removed.append(artifact.digest)
        found.bytes += artifact.size
        if not dry_run:
            registry.store.delete(artifact.digest)
    if not dry_run and found.removed:
        registry.audit(
            "collect_garbage", None, {"removed": len(found.removed), "bytes": found.bytes}
        )
    return found


def referenced_digests(registry: ModelRegistry) -> set[str]:
    """Every manifest of a remaining version and every file it lists."""
    with Session(registry.engine) as session:
        manifests = set(session.scalars(select(VersionRow.manifest_sha256)).all())
    out = set(manifests)
    for digest in manifests:
        manifest = json.loads(registry.store.get(digest, "a manifest"))
        out.update(str(entry["sha256"]) for entry in manifest.get("files", {}).values())
    return out


def _model(session: Session, model: str) -> ModelRow:
    row = session.get(ModelRow, model)
    if row is None:
        raise VersionNotFound(f"no model {model!r} in the registry; see: dnnops models list")
    return row


def _free(session: Session, model: str, version: int, *, doing: str) -> None:
    aliases = session.scalars(
        select(AliasRow.alias).where(AliasRow.model == model, AliasRow.version == version)
    ).all()
    if aliases:
        raise VersionInUse(
            f"cannot {doing} {model}@{version}: alias {', '.join(sorted(aliases))} points at "
            f"it; move it first (dnnops models alias {model} VERSION {sorted(aliases)[0]})"
        )
    rollouts = session.scalars(
        select(RolloutRow).where(
            RolloutRow.model == model,
            RolloutRow.status.in_(UNFINISHED),
            (RolloutRow.candidate == version) | (RolloutRow.baseline == version),
        )
    ).all()
    if rollouts:
        rollout = rollouts[0]
        raise VersionInUse(
            f"cannot {doing} {model}@{version}: rollout {rollout.id} on {rollout.endpoint} "
            f"({rollout.status}) uses it; let it finish or abort it "
            f"(dnnops rollout abort {rollout.endpoint})"
        )
