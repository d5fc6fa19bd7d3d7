"""The alert ledger in the metadata store: one row per alert key while it fires, its
count and ``last_seen`` moving on each sighting, resolved when its condition clears.

What an alert means (its kinds, its evidence, how it is delivered) is monitoring's
business (``monitor/judgements/alerts.py``); this module only keeps the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dnnops.registry.clock import Clock, iso_utc, utc_now
from dnnops.registry.tables import AlertRow
from dnnops.vocabulary import AlertSeverity, AlertStatus


class AlertFacts(Protocol):
    """What the ledger stores of an alert (monitoring's ``Alert`` has these)."""

    @property
    def key(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def severity(self) -> AlertSeverity: ...
    @property
    def kind(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def details(self) -> dict[str, Any]: ...


class HeldAlert(AlertFacts, Protocol):
    """An alert with a hold-down, as a monitoring evaluation raises it."""

    @property
    def for_s(self) -> float:
        """Delivered only once its condition has held this long (0: at once)."""
        ...


A = TypeVar("A", bound=HeldAlert)


@dataclass(frozen=True)
class StoredAlert:
    """One alert as the ledger holds it."""

    key: str
    model: str
    severity: AlertSeverity
    kind: str
    summary: str
    status: AlertStatus
    count: int
    first_seen: str
    """ISO 8601, UTC."""
    last_seen: str
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "model": self.model,
            "severity": self.severity,
            "kind": self.kind,
            "summary": self.summary,
            "status": self.status,
            "count": self.count,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "details": self.details,
        }


@dataclass(frozen=True)
class Recorded(Generic[A]):
    """What one evaluation changed in the ledger: what to deliver."""

    fresh: list[A]
    """Firing, and not firing before: delivered as firing."""
    resolved: list[StoredAlert]
    """Firing before, not now: delivered as resolved (``last_seen`` is when)."""

    def __bool__(self) -> bool:
        return bool(self.fresh or self.resolved)


class AlertStore:
    def __init__(self, engine: Engine, clock: Clock = utc_now) -> None:
        self.engine = engine
        self.clock = clock

    def record(self, firing: Sequence[A], kinds: Sequence[str]) -> Recorded[A]:
        """Store this evaluation's alerts; return the ones that start firing and the ones it
        resolved (both to deliver). An alert with a hold-down (``for_s``) waits as
        ``pending`` until its condition has held that long, as Prometheus's ``for:``; a
        pending alert whose condition clears is dropped unsaid. Alerts of ``kinds`` firing
        before and absent now are resolved; other kinds (a rollback, raised once by the
        rollout controller) are left as they are."""
        now = self.clock()
        fresh: list[A] = []
        resolved: list[StoredAlert] = []
        with Session(self.engine) as session, session.begin():
            open_rows = {
                r.key: r
                for r in session.scalars(
                    select(AlertRow).where(
                        AlertRow.status.in_(("pending", "firing")), AlertRow.kind.in_(kinds)
                    )
                )
            }
            for alert in firing:
                row = open_rows.pop(alert.key, None)
                if row is None:
                    row = _firing_row(alert, now)
                    session.add(row)
                    if alert.for_s > 0:
                        row.status = "pending"
                        continue
                    fresh.append(alert)
                    continue
                # its numbers move on: summary and evidence are today's
                row.count, row.last_seen, row.details = row.count + 1, now, alert.details
                row.summary = alert.summary
                if row.status == "pending" and _held(row, now) >= alert.for_s:
                    row.status = "firing"
                    fresh.append(alert)
            for row in open_rows.values():
                if row.status == "pending":
                    session.delete(row)
                    continue
                row.status, row.last_seen = "resolved", now
                resolved.append(_stored(row))
        return Recorded(fresh, resolved)

    def resolve(self, keys: Sequence[str]) -> list[StoredAlert]:
        """Resolve the firing alerts of ``keys`` (one-off alerts whose cause ended: a
        rollback that finished); returns them, to deliver as resolved."""
        if not keys:
            return []
        now = self.clock()
        with Session(self.engine) as session, session.begin():
            rows = session.scalars(
                select(AlertRow).where(AlertRow.key.in_(keys), AlertRow.status == "firing")
            ).all()
            for row in rows:
                row.status, row.last_seen = "resolved", now
            return [_stored(row) for row in rows]

    def firing_keys(self, kinds: Sequence[str]) -> set[str]:
        """The keys of ``kinds`` firing now: a monitoring evaluation clears them only under
        their signal's clearing level (hysteresis)."""
        with Session(self.engine) as session:
            query = select(AlertRow.key).where(
                AlertRow.status == "firing", AlertRow.kind.in_(kinds)
            )
            return set(session.scalars(query))

    def event(self, alert: AlertFacts) -> bool:
        """Record a one-off alert (a rollback) that no evaluation resolves; False when the
        same key is already firing (then only its count moves)."""
        now = self.clock()
        with Session(self.engine) as session, session.begin():
            row = session.scalars(
                select(AlertRow).where(AlertRow.key == alert.key, AlertRow.status == "firing")
            ).first()
            if row is not None:
                row.count, row.last_seen = row.count + 1, now
                return False
            session.add(_firing_row(alert, now))
            return True

    def list(
        self, status: AlertStatus | None = None, limit: int = 100, *, model: str | None = None
    ) -> list[StoredAlert]:
        """The latest alerts first, of one ``status`` and one ``model`` when given."""
        query = select(AlertRow).order_by(AlertRow.last_seen.desc()).limit(limit)
        if status is not None:
            query = query.where(AlertRow.status == status)
        if model is not None:
            query = query.where(AlertRow.model == model)
        with Session(self.engine) as session:
            return [_stored(r) for r in session.scalars(query).all()]


def _held(row: AlertRow, now: datetime) -> float:
    """Seconds since the alert's condition started holding (SQLite hands back naive UTC)."""
    first = row.first_seen if row.first_seen.tzinfo else row.first_seen.replace(tzinfo=UTC)
    return (now - first).total_seconds()


def _stored(row: AlertRow) -> StoredAlert:
    return StoredAlert(
        key=row.key,
        model=row.model,
        severity=row.severity,  # type: ignore[arg-type]
        kind=row.kind,
        summary=row.summary,
        status=row.status,  # type: ignore[arg-type]
        count=row.count,
        first_seen=iso_utc(row.first_seen),
        last_seen=iso_utc(row.last_seen),
        details=row.details,
    )


def _firing_row(alert: AlertFacts, now: datetime) -> AlertRow:
    return AlertRow(
        key=alert.key,
        model=alert.model,
        severity=alert.severity,
        kind=alert.kind,
        summary=alert.summary,
        details=alert.details,
        status="firing",
        first_seen=now,
        last_seen=now,
        count=1,
    )
