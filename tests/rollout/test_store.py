"""Rollouts persist in the metadata store (SQLite and PostgreSQL): one active per endpoint."""

from __future__ import annotations

from dataclasses import replace

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from dnnops.registry.db import open_engine
from dnnops.registry.tables import Base
from dnnops.rollout.policy import RolloutState
from dnnops.rollout.store import NoRollout, RolloutConflict, RolloutStore, StaleRollout


def test_one_active_rollout_per_endpoint_and_its_life(db_url: str) -> None:
    store = RolloutStore(open_engine(db_url), clock=lambda: 1000.0)
    held = store.create(
        "digits",
        "digits",
        2,
        baseline=1,
        mode="canary",
        steps=(5, 100),
        policy={"interval": 30},
        approval=True,
    )
    assert held.status == "awaiting_approval"
    with pytest.raises(RolloutConflict, match="already rolls out version 2"):
        store.create(
            "digits",
            "digits",
            3,
            baseline=1,
            mode="canary",
            steps=(5, 100),
            policy={},
            approval=False,
        )
    running = store.approve("digits")
    assert running.status == "running"
    moved = store.save(replace(running, step=1, history=({"verdict": "pass"},)))
    assert store.get(moved.id).step == 1
    assert store.get(moved.id).history == ({"verdict": "pass"},)
    aborted = store.abort("digits", "operator said so")
    assert (aborted.status, aborted.reason) == ("aborted", "operator said so")
    assert store.active("digits") is None
    with pytest.raises(NoRollout):
        store.abort("digits", "again")
    second = store.create(
        "digits", "digits", 3, baseline=1, mode="shadow", steps=(0, 100), policy={}, approval=False
    )
    assert store.latest("digits") == second
    assert [r.id for r in store.history("digits")] == [second.id, aborted.id]


def test_a_write_derived_from_a_stale_read_is_refused(db_url: str) -> None:
    """The controller checks a rollout while the CLI aborts it: the abort must stand."""
    ticks = iter(range(1000, 2000))
    store = RolloutStore(open_engine(db_url), clock=lambda: float(next(ticks)))
    read = store.create(
        "digits", "digits", 2, baseline=1, mode="canary", steps=(5, 100), policy={}, approval=False
    )
    store.abort("digits", "operator said so")
    with pytest.raises(StaleRollout, match="changed since it was read"):
        store.save(replace(read, step=1, updated=5000.0), read=read)
    assert store.get(read.id).status == "aborted"


def test_the_migrations_build_exactly_the_declared_tables(db_url: str) -> None:
    with open_engine(db_url).connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


class _CheckedMeanwhile(RolloutStore):
    """A store whose first read is followed, before the abort writes, by the controller
    recording a check on the same row (the race the shadow test met in CI)."""

    raced = False

    def active(self, endpoint: str) -> RolloutState | None:
        state = super().active(endpoint)
        if state is not None and not self.raced:
            self.raced = True
            self.save(replace(state, history=({"verdict": "hold"},), updated=state.updated + 1))
        return state


def test_an_abort_wins_over_a_check_recorded_between_its_read_and_its_write(
    db_url: str,
) -> None:
    store = _CheckedMeanwhile(open_engine(db_url), clock=lambda: 5000.0)
    created = store.create(
        "digits", "digits", 2, baseline=1, mode="shadow", steps=(0, 100), policy={}, approval=False
    )
    aborted = store.abort("digits", "operator said so")
    assert store.raced
    assert (aborted.status, aborted.reason) == ("aborted", "operator said so")
    assert store.get(created.id).history == ({"verdict": "hold"},)
    assert store.active("digits") is None
