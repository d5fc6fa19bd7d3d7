"""Rollouts in the metadata store, as the policy's states: the rows live in
``registry/rollouts.py``; approving and aborting, which are decisions, live here."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from dnnops.registry.rollouts import (
    NoRollout,
    RolloutConflict,
    RolloutRows,
    StaleRollout,
    StoredRollout,
)
from dnnops.rollout.policy import RolloutState

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["NoRollout", "RolloutConflict", "RolloutStore", "StaleRollout"]

ABORT_ATTEMPTS = 5


class RolloutStore:
    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self.rows = RolloutRows(engine, clock)
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
        """Start a rollout, refusing a second one on the same endpoint (``RolloutConflict``)."""
        stored = self.rows.create(
            endpoint,
            model,
            candidate,
            baseline=baseline,
            mode=mode,
            steps=steps,
            policy=policy,
            approval=approval,
        )
        return _state(stored)

    def save(self, state: RolloutState, read: RolloutState | None = None) -> RolloutState:
        """Write ``state``; with ``read`` (the state it was derived from), only if the row
        has not changed since (``StaleRollout`` otherwise)."""
        return _state(self.rows.save(state, read))

    def active(self, endpoint: str) -> RolloutState | None:
        return _maybe(self.rows.active(endpoint))

    def latest(self, endpoint: str) -> RolloutState | None:
        return _maybe(self.rows.latest(endpoint))

    def last_promoted(self, endpoint: str) -> RolloutState | None:
        return _maybe(self.rows.last_promoted(endpoint))

    def get(self, rollout_id: int) -> RolloutState:
        return _state(self.rows.get(rollout_id))

    def history(self, endpoint: str, limit: int = 20) -> list[RolloutState]:
        return [_state(s) for s in self.rows.history(endpoint, limit)]

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


def _state(stored: StoredRollout) -> RolloutState:
    return RolloutState(**asdict(stored))


def _maybe(stored: StoredRollout | None) -> RolloutState | None:
    return None if stored is None else _state(stored)
