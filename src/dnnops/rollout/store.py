"""Rollouts in the metadata store: one active rollout per endpoint, every check kept."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dnnops.errors import UsageError
from dnnops.registry.tables import RolloutRow
from dnnops.rollout.policy import ACTIVE, RolloutState, Status


class RolloutConflict(UsageError):
    """An endpoint already has a rollout in progress."""

    http_status = 409


class NoRollout(UsageError):
    """The endpoint has no rollout (in progress, when one was asked for)."""

    http_status = 404


class StaleRollout(RolloutConflict):
    """The rollout changed since it was read (an abort from the CLI while the controller
    was checking it): the write is refused so the newer decision stands."""


ABORT_ATTEMPTS = 5


class RolloutStore:
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
    ) -> RolloutState:
        """Start a rollout, refusing a second one on the same endpoint."""
        now = self.clock()
        with Session(self.engine) as session, session.begin():
            running = session.scalars(
                select(RolloutRow).where(
                    RolloutRow.endpoint == endpoint, RolloutRow.status.in_(ACTIVE)
                )
            ).first()
            if running is not None:
                raise RolloutConflict(
                    f"endpoint {endpoint!r} already rolls out version {running.candidate} "
                    f"(rollout {running.id}); wait for it, or: dnnops rollout abort {endpoint}"
                )
            status: Status = "awaiting_approval" if approval else "running"
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
            return _entity(row)

    def save(self, state: RolloutState, read: RolloutState | None = None) -> RolloutState:
        """Write ``state``; with ``read`` (the state it was derived from), only if the row
        has not changed since (compare and swap on status and update time)."""
        with Session(self.engine) as session, session.begin():
            row = session.get(RolloutRow, state.id, with_for_update=True)
            if row is None:
                raise NoRollout(f"rollout {state.id} does not exist")
            if read is not None and (row.status, row.updated) != (read.status, read.updated):
                raise StaleRollout(
                    f"rollout {state.id} changed since it was read (now {row.status}); "
                    "not overwriting it"
                )
            row.status, row.step, row.failed_checks = state.status, state.step, state.failed_checks
            row.step_started, row.updated = state.step_started, state.updated
            row.history, row.reason = list(state.history), state.reason
            return _entity(row)

    def active(self, endpoint: str) -> RolloutState | None:
        with Session(self.engine) as session:
            row = session.scalars(
                select(RolloutRow)
                .where(RolloutRow.endpoint == endpoint, RolloutRow.status.in_(ACTIVE))
                .order_by(RolloutRow.id.desc())
            ).first()
            return None if row is None else _entity(row)

    def latest(self, endpoint: str) -> RolloutState | None:
        with Session(self.engine) as session:
            row = session.scalars(
                select(RolloutRow)
                .where(RolloutRow.endpoint == endpoint)
                .order_by(RolloutRow.id.desc())
            ).first()
            return None if row is None else _entity(row)

    def last_promoted(self, endpoint: str) -> RolloutState | None:
        with Session(self.engine) as session:
            row = session.scalars(
                select(RolloutRow)
                .where(RolloutRow.endpoint == endpoint, RolloutRow.status == "promoted")
                .order_by(RolloutRow.id.desc())
            ).first()
            return None if row is None else _entity(row)

    def get(self, rollout_id: int) -> RolloutState:
        with Session(self.engine) as session:
            row = session.get(RolloutRow, rollout_id)
            if row is None:
                raise NoRollout(f"rollout {rollout_id} does not exist")
            return _entity(row)

    def history(self, endpoint: str, limit: int = 20) -> list[RolloutState]:
        with Session(self.engine) as session:
            rows = session.scalars(
                select(RolloutRow)
                .where(RolloutRow.endpoint == endpoint)
                .order_by(RolloutRow.id.desc())
                .limit(limit)
            ).all()
            return [_entity(r) for r in rows]

    def approve(self, endpoint: str) -> RolloutState:
        """Let a rollout held for approval start now (its first step's window starts too)."""
        state = self.active(endpoint)
        if state is None or state.status != "awaiting_approval":
            raise NoRollout(f"endpoint {endpoint!r} has no rollout waiting for approval")
        now = self.clock()
        started = replace(state, status="running", step_started=now, updated=now, reason="")
        return self.save(started, read=state)

    def abort(self, endpoint: str, reason: str) -> RolloutState:
        """End the active rollout as aborted. The controller records each check on the same
        row; an abort that lands between its own read and write reads again and wins, since
        an operator's decision outranks a routine step (the controller's stale write is
        refused instead)."""
        for _ in range(ABORT_ATTEMPTS):
            state = self.active(endpoint)
            if state is None:
                raise NoRollout(f"endpoint {endpoint!r} has no rollout in progress")
            aborted = replace(state, status="aborted", updated=self.clock(), reason=reason)
            try:
                return self.save(aborted, read=state)
            except StaleRollout:
                continue
        raise StaleRollout(
            f"rollout of {endpoint!r} changed under each of {ABORT_ATTEMPTS} abort attempts; "
            "try again"
        )


def _entity(row: RolloutRow) -> RolloutState:
    return RolloutState(
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
