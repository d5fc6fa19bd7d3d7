"""Named API keys: ``dnnops keys create NAME --role deployer [--model M]`` issues one (shown
once; only its SHA-256 is stored), ``revoke`` ends it, and the server resolves a bearer
key to its name and role. A key may be limited to one model, and may expire. Roles nest:
a ``labeler`` may read, a ``deployer`` may label, an ``admin`` may do anything."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dnnops.errors import UsageError
from dnnops.registry.clock import Clock, iso_utc, utc_now
from dnnops.registry.tables import ApiKeyRow

Role = Literal["reader", "labeler", "deployer", "admin"]
ROLES: tuple[Role, ...] = ("reader", "labeler", "deployer", "admin")
"""In order: each may do what the ones before it may."""
PREFIX = "dnk_"
"""Every key starts so: told apart from a shared token at a glance, and by scanners."""
TOUCH_EVERY_S = 60.0
"""``last_used`` is written at most this often per key (not on every request)."""


@dataclass(frozen=True)
class Grant:
    """A role, on one model or on all."""

    role: Role
    model: str | None = None

    def allows(self, needed: Role, model: str | None = None) -> bool:
        """The role covers ``needed``, on ``model`` when the grant is limited to one."""
        if ROLES.index(self.role) < ROLES.index(needed):
            return False
        return self.model is None or model is None or self.model == model

    @property
    def described(self) -> str:
        return self.role + (f" on {self.model}" if self.model else "")


@dataclass(frozen=True)
class ApiKey:
    name: str
    role: Role
    model: str | None
    created_at: str
    expires_at: str | None
    last_used_at: str | None
    revoked_at: str | None

    def allows(self, needed: Role, model: str | None = None) -> bool:
        """The key's role covers ``needed``, on ``model`` when the key is limited to one."""
        return Grant(self.role, self.model).allows(needed, model)

    @property
    def described(self) -> str:
        return Grant(self.role, self.model).described

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def key_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    def __init__(self, engine: Engine, clock: Clock = utc_now) -> None:
        self.engine = engine
        self.clock = clock

    def create(
        self, name: str, role: Role, *, model: str | None = None, expires_s: float | None = None
    ) -> tuple[str, ApiKey]:
        """A new key and its record; the key itself is returned this once."""
        if role not in ROLES:
            raise UsageError(f"role {role!r}: one of {', '.join(ROLES)}")
        now = self.clock()
        secret = PREFIX + secrets.token_urlsafe(32)
        with Session(self.engine) as session, session.begin():
            if _active(session, name, now) is not None:
                raise UsageError(f"an active key is already named {name!r}: revoke it first")
            row = ApiKeyRow(
                name=name,
                key_sha256=key_digest(secret),
                role=role,
                model=model,
                created_at=now,
                expires_at=now + timedelta(seconds=expires_s) if expires_s else None,
            )
            session.add(row)
            session.flush()
            return secret, _entity(row)

    def list(self) -> list[ApiKey]:
        with Session(self.engine) as session:
            rows = session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id)).all()
            return [_entity(r) for r in rows]

    def revoke(self, name: str) -> ApiKey:
        now = self.clock()
        with Session(self.engine) as session, session.begin():
            row = _active(session, name, now)
            if row is None:
                raise UsageError(f"no active key named {name!r} (dnnops keys list)")
            row.revoked_at = now
            return _entity(row)

    def identify(self, secret: str) -> ApiKey | None:
        """The active key ``secret`` is, or None (unknown, revoked or expired); its
        ``last_used`` moves on, at most every ``TOUCH_EVERY_S``."""
        if not secret.startswith(PREFIX):
            return None
        now = self.clock()
        with Session(self.engine) as session, session.begin():
            row = session.scalars(
                select(ApiKeyRow).where(ApiKeyRow.key_sha256 == key_digest(secret))
            ).first()
            if row is None or row.revoked_at is not None or _expired(row, now):
                return None
            last = _aware(row.last_used_at)
            if last is None or (now - last).total_seconds() >= TOUCH_EVERY_S:
                row.last_used_at = now
            return _entity(row)

    def any(self) -> bool:
        """Whether any key was ever issued: then the server asks every route for one."""
        with Session(self.engine) as session:
            return session.scalars(select(ApiKeyRow.id).limit(1)).first() is not None


def _active(session: Session, name: str, now: datetime) -> ApiKeyRow | None:
    rows = session.scalars(
        select(ApiKeyRow).where(ApiKeyRow.name == name, ApiKeyRow.revoked_at.is_(None))
    ).all()
    return next((r for r in rows if not _expired(r, now)), None)


def _expired(row: ApiKeyRow, now: datetime) -> bool:
    expires = _aware(row.expires_at)
    return expires is not None and expires <= now


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _entity(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        name=row.name,
        role=row.role,  # type: ignore[arg-type]
        model=row.model,
        created_at=iso_utc(row.created_at),
        expires_at=iso_utc(row.expires_at),
        last_used_at=iso_utc(row.last_used_at),
        revoked_at=iso_utc(row.revoked_at),
    )
