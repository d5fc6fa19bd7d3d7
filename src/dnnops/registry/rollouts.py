"""Rollout rows: one active rollout per endpoint, every check kept, writes compared and
swapped so a newer decision is never overwritten.

The rows come back as ``StoredRollout``, plain values; ``rollout/store.py`` turns them
into the policy's ``RolloutState`` (the policy imports no I/O, so it cannot live here).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Engine, Select, select
from sqlalchemy.orm import Session

from dnnops.errors import UsageError
from dnnops.registry.tables import RolloutRow
from dnnops.vocabulary import ACTIVE_ROLLOUT, RolloutStatus


class RolloutConflict(UsageError):
    """An endpoint already has a rollout in progress."""

    http_status = 409


class NoRollout(UsageError):
    """The endpoint has no rollout (in progress, when one was asked for)."""

    http_status = 404


class StaleRollout(RolloutConflict):
    """The rollout changed since it was read (an abort from the CLI while the controller
    was checking it): the write is refused so the newer decision stands."""


@dataclass(frozen=True)
class StoredRollout:
    """One rollout row as values."""

    id: int
    endpoint: str
    model: str
    candidate: int
    baseline: int | None
    mode: str
    steps: tuple[int, ...]
    policy: dict[str, Any]
    status: RolloutStatus
    step: int
    failed_checks: int
    step_started: float
    created: float
    updated: float
    history: tuple[dict[str, Any], ...]
    reason: str


class RolloutProgress(Protocol):
    """What a check changes on a rollout (the policy's state has these)."""

    @property
    def id(self) -> int: ...
    @property
    def status(self) -> RolloutStatus: ...
    @property
    def step(self) -> int: ...
    @property
    def failed_checks(self) -> int: ...
    @property
    def step_started(self) -> float: ...
    @property
    def updated(self) -> float: ...
    @property
    def history(self) -> tuple[dict[str, Any], ...]: ...
    @property
    def reason(self) -> str: ...


class RolloutRows:
    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock

    def create(
        self,
        endpoint: str,
        model: str,
        candidate: int,
        *,
        baseline: int | None,
        mode: str,
        steps: tuple[int, ...],
        policy: dict[str, Any],
        approval: bool = False,
    ) -> StoredRollout:
        """Start a rollout, refusing a second one on the same endpoint."""
        now = self.clock()
        with Session(self.engine) as session, session.begin():
            running = session.scalars(_in_progress(endpoint)).first()
            if running is not None:
                raise RolloutConflict(
                    f"endpoint {endpoint!r} already rolls out version {running.candidate} "
                    f"(rollout {running.id}); wait for it, or: dnnops rollout abort {endpoint}"
                )
            status: RolloutStatus = "awaiting_approval" if approval else "running"
            row = RolloutRow(
                endpoint=endpoint,
                model=model,
                candidate=candidate,
                baseline=baseline,
                mode=mode,
                steps=list(steps),
                policy=policy,
                status=status,
                step=0,
                failed_checks=0,
                step_started=now,
                created=now,
                updated=now,
                history=[],
                reason="waiting for approval: dnnops rollout start" if approval else "",
            )
            session.add(row)
            session.flush()
            return _stored(row)

    def save(self, progress: RolloutProgress, read: RolloutProgress | None = None) -> StoredRollout:
        """Write ``progress``; with ``read`` (the state it was derived from), only if the
        row has not changed since (compare and swap on status and update time)."""
        with Session(self.engine) as session, session.begin():
            row = session.get(RolloutRow, progress.id, with_for_update=True)
            if row is None:
                raise NoRollout(f"rollout {progress.id} does not exist")
            if read is not None and (row.status, row.updated) != (read.status, read.updated):
                raise StaleRollout(
                    f"rollout {progress.id} changed since it was read (now {row.status}); "
                    "not overwriting it"
                )
            row.status, row.step = progress.status, progress.step
            row.failed_checks = progress.failed_checks
            row.step_started, row.updated = progress.step_started, progress.updated
            row.history, row.reason = list(progress.history), progress.reason
            return _stored(row)

    def active(self, endpoint: str) -> StoredRollout | None:
        return self._first(_in_progress(endpoint).order_by(RolloutRow.id.desc()))

    def latest(self, endpoint: str) -> StoredRollout | None:
        return self._first(_of(endpoint).order_by(RolloutRow.id.desc()))

    def last_promoted(self, endpoint: str) -> StoredRollout | None:
        query = _of(endpoint).where(RolloutRow.status == "promoted")
        return self._first(query.order_by(RolloutRow.id.desc()))

    def get(self, rollout_id: int) -> StoredRollout:
        with Session(self.engine) as session:
            row = session.get(RolloutRow, rollout_id)
            if row is None:
                raise NoRollout(f"rollout {rollout_id} does not exist")
            return _stored(row)

    def history(self, endpoint: str, limit: int = 20) -> list[StoredRollout]:
        query = _of(endpoint).order_by(RolloutRow.id.desc()).limit(limit)
        with Session(self.engine) as session:
            return [_stored(r) for r in session.scalars(query).all()]

    def _first(self, query: Select[RolloutRow]) -> StoredRollout | None:
        with Session(self.engine) as session:
            row = session.scalars(query).first()
            return None if row is None else _stored(row)


def _of(endpoint: str) -> Select[RolloutRow]:
    return select(RolloutRow).where(RolloutRow.endpoint == endpoint)


def _in_progress(endpoint: str) -> Select[RolloutRow]:
    return _of(endpoint).where(RolloutRow.status.in_(ACTIVE_ROLLOUT))


def _stored(row: RolloutRow) -> StoredRollout:
    return StoredRollout(
        id=row.id,
        endpoint=row.endpoint,
        model=row.model,
        candidate=row.candidate,
        baseline=row.baseline,
        mode=row.mode,
        steps=tuple(row.steps),
        policy=dict(row.policy),
        status=row.status,  # type: ignore[arg-type]
        step=row.step,
        failed_checks=row.failed_checks,
        step_started=row.step_started,
        created=row.created,
        updated=row.updated,
        history=tuple(row.history),
        reason=row.reason,
    )
