"""The model registry: immutable ``(name, version)`` plus movable aliases, with an audit log.

A version's files live in the artifact store; its manifest (itself an artifact) lists them
by digest with everything needed to serve and judge it. The database row keeps the
manifest's digest, so a version is verified end to end from one trusted value.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import os
import re
import socket
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dnnops.errors import DnnopsError, UsageError
from dnnops.registry.actor import ACTOR
from dnnops.registry.artifacts import ArtifactError, ArtifactStore, check_digest
from dnnops.registry.clock import Clock, iso_utc, utc_now
from dnnops.registry.manifest import Manifest
from dnnops.registry.tables import AliasRow, AuditRow, DatasetRow, ModelRow, VersionRow

MANIFEST_FORMAT = 1
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
REGISTER_ATTEMPTS = 20


class VersionNotFound(UsageError):
    """No such model, version or alias."""

    http_status = 404


class IntegrityFailure(DnnopsError):
    """A version's artifacts or signature do not check out."""

    http_status = 500  # the server's store is damaged: nothing the client can fix


@dataclass(frozen=True)
class VersionRecord:
    model: str
    version: int
    created_at: str
    source: str
    status: str
    run_id: str | None
    parent_version: int | None
    dataset_sha256: str | None
    manifest_sha256: str
    metrics: dict[str, Any]
    gates_passed: bool | None
    aliases: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Registration:
    """What a new version is made of; the registry adds the number and the manifest."""

    model: str
    source: str  # "trained" or "imported"
    files: Mapping[str, bytes]
    manifest: Mapping[str, Any]
    """Fields copied into the manifest: spec, input, output, classes, metrics, ..."""
    metrics: Mapping[str, float]
    gates_passed: bool | None
    run_id: str | None = None
    dataset: Mapping[str, Any] | None = None
    """``{"sha256", "source", "rows", "schema"}`` of the training data, if known."""


@dataclass(frozen=True)
class VerifyReport:
    ref: str
    ok: bool
    checked: list[str]
    problems: list[str]


def default_actor() -> str:
    return os.environ.get("DNNOPS_ACTOR") or f"{getpass.getuser()}@{socket.gethostname()}"


def parse_ref(text: str) -> tuple[str, str]:
    """``NAME@REF`` -> (name, ref); REF is a version number or an alias."""
    name, sep, ref = text.partition("@")
    if not sep or not name or not ref:
        raise UsageError(
            f"{text!r} is not NAME@REF; write for example digits@3 or digits@production"
        )
    return name, ref


def canonical_json(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()


def sign(manifest: Mapping[str, Any], key: bytes) -> str:
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return hmac.new(key, canonical_json(body), hashlib.sha256).hexdigest()


class VersionFiles(ABC):
    """Reading a version's files, checked: what every registry shares, whichever catalog
    (the database, or a server over HTTP) gave the version's record."""

    store: ArtifactStore
    signing_key: bytes | None

    @abstractmethod
    def resolve(self, model: str, ref: str | int) -> VersionRecord:
        """A version by number or alias."""

    def resolve_ref(self, text: str) -> VersionRecord:
        return self.resolve(*parse_ref(text))

    def manifest(self, record: VersionRecord) -> Manifest:
        """The verified manifest: digest checked, and the signature when signing is on."""
        data = self.store.get(record.manifest_sha256, f"manifest of {record.ref}")
        manifest = Manifest(json.loads(data))
        if self.signing_key is not None:
            signature = manifest.signature
            if signature is None:
                raise IntegrityFailure(
                    f"{record.ref} is unsigned but DNNOPS_SIGNING_KEY is set; refusing to load it"
                )
            if not hmac.compare_digest(signature, sign(manifest, self.signing_key)):
                raise IntegrityFailure(
                    f"{record.ref} has a wrong signature: its manifest was not signed with this key"
                )
        return manifest

    def file(self, record: VersionRecord, manifest: Manifest, name: str) -> bytes:
        entry = manifest.files.get(name)
        if entry is None:
            raise VersionNotFound(
                f"{record.ref} has no file {name!r}; it has {sorted(manifest.files)}"
            )
        return self.store.get(entry["sha256"], f"{name} of {record.ref}")

    def verify(self, record: VersionRecord) -> VerifyReport:
        """Check the manifest, its signature and every file; collect every problem."""
        try:
            manifest = self.manifest(record)
        except (ArtifactError, IntegrityFailure) as exc:
            return VerifyReport(record.ref, False, ["manifest"], [str(exc)])
        checked, problems = ["manifest"], []
        for name in sorted(manifest.files):
            checked.append(name)
            try:
                self.file(record, manifest, name)
            except ArtifactError as exc:
                problems.append(str(exc))
        return VerifyReport(record.ref, not problems, checked, problems)


class Registry(Protocol):
    """What commands, the Python API and the loaders use of a registry: the database's
    (``ModelRegistry``) or a server's over HTTP (``RemoteRegistry``, ``DNNOPS_SERVER_URL``).
    Code that needs the database itself (the server, retirement) takes a ``ModelRegistry``."""

    def register(self, request: Registration) -> VersionRecord: ...

    def set_alias(self, model: str, alias: str, version: int, *, reason: str = "") -> None: ...

    def set_status(self, model: str, version: int, status: str, *, reason: str = "") -> None: ...

    def audit(self, action: str, model: str | None, details: dict[str, Any]) -> None: ...

    def attach(
        self, record: VersionRecord, name: str, data: bytes, *, fields: Mapping[str, Any]
    ) -> VersionRecord: ...

    def resolve(self, model: str, ref: str | int) -> VersionRecord: ...

    def resolve_ref(self, text: str) -> VersionRecord: ...

    def versions(self, model: str) -> list[VersionRecord]: ...

    def models(self) -> list[dict[str, Any]]: ...

    def aliases(self, model: str) -> dict[str, int]: ...

    def audit_log(self, model: str | None = None, limit: int = 200) -> list[dict[str, Any]]: ...

    def manifest(self, record: VersionRecord) -> Manifest: ...

    def file(self, record: VersionRecord, manifest: Manifest, name: str) -> bytes: ...

    def verify(self, record: VersionRecord) -> VerifyReport: ...


class ModelRegistry(VersionFiles):
    def __init__(
        self,
        engine: Engine,
        store: ArtifactStore,
        signing_key: bytes | None = None,
        *,
        clock: Clock = utc_now,
        actor: str | None = None,
    ) -> None:
        self.engine = engine
        self.store = store
        self.signing_key = signing_key
        self.clock = clock
        self.actor = actor or default_actor()

    # -- writing ---------------------------------------------------------------------

    def register(self, request: Registration) -> VersionRecord:
        """Store the files and give the version the next number, even under concurrency."""
        check_registration(request)
        files = {}
        for name, data in request.files.items():
            files[name] = {"sha256": self.store.put(data), "size": len(data)}
        return self.register_stored(request, files)

    def register_stored(
        self, request: Registration, files: Mapping[str, Mapping[str, Any]]
    ) -> VersionRecord:
        """Register a version whose files the store already holds (``{name: {"sha256",
        "size"}}``): what the server does after a client uploaded them."""
        _check_name(request.model)
        checked = {}
        for name, entry in files.items():
            _check_file_name(name)
            digest = check_digest(str(entry.get("sha256", "")))
            if not self.store.exists(digest):
                raise UsageError(f"file {name!r} ({digest[:12]}…) is not in the artifact store")
            checked[name] = {"sha256": digest, "size": int(entry.get("size", 0))}
        for attempt in range(REGISTER_ATTEMPTS):
            try:
                return self._insert_version(request, checked)
            except IntegrityError:
                if attempt == REGISTER_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _insert_version(self, request: Registration, files: dict[str, Any]) -> VersionRecord:
        now = self.clock()
        with Session(self.engine) as session, session.begin():
            if session.get(ModelRow, request.model) is None:
                session.add(ModelRow(name=request.model, created_at=now))
                session.flush()
            latest = session.scalar(
                select(func.max(VersionRow.version)).where(VersionRow.model == request.model)
            )
            number = (latest or 0) + 1
            parent = _alias_version(session, request.model, "production") or latest
            manifest = {
                **request.manifest,
                "format": MANIFEST_FORMAT,
                "model": request.model,
                "version": number,
                "created_at": now.isoformat(),
                "source": request.source,
                "run_id": request.run_id,
                "parent_version": parent,
                "files": files,
            }
            if self.signing_key is not None:
                manifest["signature"] = sign(manifest, self.signing_key)
            manifest_sha256 = self.store.put(json.dumps(manifest, indent=2, default=str).encode())
            if (
                request.dataset is not None
                and session.get(DatasetRow, request.dataset["sha256"]) is None
            ):
                session.add(
                    DatasetRow(
                        sha256=request.dataset["sha256"],
                        source=request.dataset["source"],
                        rows=request.dataset["rows"],
                        schema_=request.dataset["schema"],
                        created_at=now,
                    )
                )
            row = VersionRow(
                model=request.model,
                version=number,
                created_at=now,
                source=request.source,
                status="ready",
                run_id=request.run_id,
                parent_version=parent,
                dataset_sha256=request.dataset["sha256"] if request.dataset else None,
                manifest_sha256=manifest_sha256,
                metrics=dict(request.metrics),
                gates_passed=request.gates_passed,
            )
            session.add(row)
            self.record_audit(
                session,
                "register",
                request.model,
                details={
                    "version": number,
                    "source": request.source,
                    "run_id": request.run_id,
                    "manifest_sha256": manifest_sha256,
                    "gates_passed": request.gates_passed,
                },
            )
            session.flush()
            return self._entity(session, row)

    def set_alias(self, model: str, alias: str, version: int, *, reason: str = "") -> None:
        """Point ``alias`` at ``version`` (creating or moving it) and audit the move."""
        _check_name(alias)
        if alias.isdigit():
            raise UsageError(f"alias {alias!r} would be confused with a version number")
        with Session(self.engine) as session, session.begin():
            if self.version_row(session, model, version).status == "archived":
                raise UsageError(
                    f"{model}@{version} is archived; bring it back first: "
                    f"dnnops models unarchive {model}@{version}"
                )
            row = session.get(AliasRow, (model, alias))
            previous = None if row is None else row.version
            if row is None:
                session.add(
                    AliasRow(model=model, alias=alias, version=version, updated_at=self.clock())
                )
            else:
                row.version, row.updated_at = version, self.clock()
            self.record_audit(
                session,
                "alias",
                model,
                details={"alias": alias, "from": previous, "to": version, "reason": reason},
            )

    def set_status(self, model: str, version: int, status: str, *, reason: str = "") -> None:
        with Session(self.engine) as session, session.begin():
            row = self.version_row(session, model, version)
            previous, row.status = row.status, status
            self.record_audit(
                session,
                "status",
                model,
                details={"version": version, "from": previous, "to": status, "reason": reason},
            )

    def audit(self, action: str, model: str | None, details: dict[str, Any]) -> None:
        """Record a decision taken outside the registry (a retraining, a rollout)."""
        with Session(self.engine) as session, session.begin():
            self.record_audit(session, action, model, details=details)

    def attach(
        self, record: VersionRecord, name: str, data: bytes, *, fields: Mapping[str, Any]
    ) -> VersionRecord:
        """Add a derived file (the INT8 graph) to a version: a new manifest, same weights."""
        _check_file_name(name)
        return self.attach_stored(
            record, name, {"sha256": self.store.put(data), "size": len(data)}, fields=fields
        )

    def attach_stored(
        self,
        record: VersionRecord,
        name: str,
        entry: Mapping[str, Any],
        *,
        fields: Mapping[str, Any],
    ) -> VersionRecord:
        """``attach`` for a file the store already holds (uploaded by a client)."""
        _check_file_name(name)
        digest = check_digest(str(entry.get("sha256", "")))
        if not self.store.exists(digest):
            raise UsageError(f"file {name!r} ({digest[:12]}…) is not in the artifact store")
        manifest = self.manifest(record)
        manifest["files"][name] = {"sha256": digest, "size": int(entry.get("size", 0))}
        manifest.update(fields)
        if self.signing_key is not None:
            manifest["signature"] = sign(manifest, self.signing_key)
        digest = self.store.put(json.dumps(manifest, indent=2, default=str).encode())
        with Session(self.engine) as session, session.begin():
            row = self.version_row(session, record.model, record.version)
            row.manifest_sha256 = digest
            self.record_audit(
                session,
                "attach",
                record.model,
                details={"version": record.version, "file": name, "manifest_sha256": digest},
            )
            session.flush()
            return self._entity(session, row)

    # -- reading ---------------------------------------------------------------------

    def resolve(self, model: str, ref: str | int) -> VersionRecord:
        """A version by number or alias."""
        with Session(self.engine) as session:
            if isinstance(ref, int) or str(ref).isdigit():
                return self._entity(session, self.version_row(session, model, int(ref)))
            number = _alias_version(session, model, str(ref))
            if number is None:
                raise VersionNotFound(self._no_alias(session, model, str(ref)))
            return self._entity(session, self.version_row(session, model, number))

    def versions(self, model: str) -> list[VersionRecord]:
        with Session(self.engine) as session:
            rows = session.scalars(
                select(VersionRow)
                .where(VersionRow.model == model)
                .order_by(VersionRow.version.desc())
            ).all()
            if not rows and session.get(ModelRow, model) is None:
                raise VersionNotFound(
                    f"no model {model!r} in the registry; see: dnnops models list"
                )
            return [self._entity(session, r) for r in rows]

    def models(self) -> list[dict[str, Any]]:
        with Session(self.engine) as session:
            out = []
            for row in session.scalars(select(ModelRow).order_by(ModelRow.name)).all():
                latest = session.scalar(
                    select(func.max(VersionRow.version)).where(VersionRow.model == row.name)
                )
                aliases = dict(sorted(self._aliases(session, row.name).items()))
                out.append({"name": row.name, "latest_version": latest, "aliases": aliases})
            return out

    def aliases(self, model: str) -> dict[str, int]:
        with Session(self.engine) as session:
            return self._aliases(session, model)

    def audit_log(self, model: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if model is not None:
            query = query.where(AuditRow.model == model)
        with Session(self.engine) as session:
            return [
                {
                    "at": r.at.isoformat(),
                    "actor": r.actor,
                    "action": r.action,
                    "model": r.model,
                    "details": r.details,
                }
                for r in session.scalars(query).all()
            ]

    # -- in a caller's transaction, and helpers ------------------------------------------

    def version_row(self, session: Session, model: str, version: int) -> VersionRow:
        """A version's row in ``session`` (for changes made in one transaction with an
        audit entry, as retirement's), or ``VersionNotFound`` naming what exists."""
        row = session.scalar(
            select(VersionRow).where(VersionRow.model == model, VersionRow.version == version)
        )
        if row is None:
            if session.get(ModelRow, model) is None:
                raise VersionNotFound(
                    f"no model {model!r} in the registry; see: dnnops models list"
                )
            raise VersionNotFound(f"model {model!r} has no version {version}")
        return row

    def _no_alias(self, session: Session, model: str, alias: str) -> str:
        """What exists instead of ``model@alias``, and the command that creates the alias."""
        if session.get(ModelRow, model) is None:
            return f"no model {model!r} in the registry; see: dnnops models list"
        numbers = session.scalars(
            select(VersionRow.version)
            .where(VersionRow.model == model)
            .order_by(VersionRow.version.desc())
        ).all()
        known = self._aliases(session, model)
        aliases = ", ".join(f"{a} -> {v}" for a, v in sorted(known.items())) or "none"
        newest = numbers[0] if numbers else 1
        return (
            f"model {model!r} has no alias {alias!r} (versions: "
            f"{', '.join(map(str, numbers)) or 'none'}; aliases: {aliases}); serve a version "
            f"by number ({model}@{newest}) or point the alias at one: "
            f"dnnops models alias {model} {newest} {alias}"
        )

    def _aliases(self, session: Session, model: str) -> dict[str, int]:
        rows = session.scalars(select(AliasRow).where(AliasRow.model == model)).all()
        return {r.alias: r.version for r in rows}

    def _entity(self, session: Session, row: VersionRow) -> VersionRecord:
        aliases = session.scalars(
            select(AliasRow.alias).where(
                AliasRow.model == row.model, AliasRow.version == row.version
            )
        ).all()
        return VersionRecord(
            model=row.model,
            version=row.version,
            created_at=iso_utc(row.created_at) or "",
            source=row.source,
            status=row.status,
            run_id=row.run_id,
            parent_version=row.parent_version,
            dataset_sha256=row.dataset_sha256,
            manifest_sha256=row.manifest_sha256,
            metrics=dict(row.metrics),
            gates_passed=row.gates_passed,
            aliases=sorted(aliases),
        )

    def record_audit(
        self, session: Session, action: str, model: str | None, *, details: dict[str, Any]
    ) -> None:
        """Add an audit entry to ``session``'s transaction: it commits with the change."""
        actor = ACTOR.get() or self.actor  # a server's request: the identity it established
        session.add(
            AuditRow(at=self.clock(), actor=actor, action=action, model=model, details=details)
        )


def _alias_version(session: Session, model: str, alias: str) -> int | None:
    row = session.get(AliasRow, (model, alias))
    return None if row is None else row.version


def check_registration(request: Registration) -> None:
    """The model's and the files' names, checked before any byte is stored."""
    _check_name(request.model)
    for name in request.files:
        _check_file_name(name)


def _check_file_name(name: str) -> None:
    if not FILE_NAME.match(name):
        raise UsageError(f"artifact name {name!r} is not a plain file name")


def _check_name(name: str) -> None:
    if not NAME.match(name):
        raise UsageError(
            f"{name!r} is not a valid name: letters, digits, '_', '.', '-', at most 64"
        )
