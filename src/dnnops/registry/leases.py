"""What a fleet of servers coordinates through the metadata database, with no coordinator
but the database: the leader's lease and the log of admin commands.

Leases: one holder at a time across every process that shares the database, on any host.

A holder renews well within the lease's time to live; one that stops (killed, partitioned,
stalled) loses the lease when it expires, and the next caller takes it with the epoch
raised by one. The row is read ``FOR UPDATE`` inside the transaction that changes it, so
two contenders never both win. Clocks: expiry is compared with the caller's wall clock,
so replicas need clocks in step to well under the time to live (NTP gives milliseconds).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dnnops.registry.tables import FleetCommandRow, LeaseRow


@dataclass(frozen=True)
class Held:
    holder: str
    epoch: int
    expires_at: float


class Lease:
    def __init__(
        self,
        engine: Engine,
        name: str,
        holder: str,
        *,
        ttl_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.name = name
        self.holder = holder
        self.ttl_s = ttl_s
        self.clock = clock

    def hold(self) -> Held | None:
        """Take the lease, or renew it when already ours; None while another holder's
        lease is still running."""
        now = self.clock()
        try:
            with Session(self.engine) as session, session.begin():
                row = session.get(LeaseRow, self.name, with_for_update=True)
                if row is None:
                    row = LeaseRow(name=self.name, holder=self.holder, epoch=1, expires_at=0.0)
                    session.add(row)
                elif row.holder != self.holder:
                    if row.expires_at > now:
                        return None
                    row.holder, row.epoch = self.holder, row.epoch + 1
                row.expires_at = now + self.ttl_s
                return Held(row.holder, row.epoch, row.expires_at)
        except IntegrityError:  # another contender inserted the first row at the same time
            return None

    def release(self) -> None:
        """Give the lease up now (a replica draining), so another need not wait it out."""
        with Session(self.engine) as session, session.begin():
            row = session.get(LeaseRow, self.name, with_for_update=True)
            if row is not None and row.holder == self.holder:
                row.expires_at = 0.0

    def current(self) -> Held | None:
        with Session(self.engine) as session:
            row = session.get(LeaseRow, self.name)
            return None if row is None else Held(row.holder, row.epoch, row.expires_at)


class FleetCommands:
    """The fleet's command log in the metadata database: what ``serve.group``'s file is to
    the workers of one host, for replicas on many. Each reader follows the log by id from
    where it was when the reader started: a replica started later serves what the
    registry's aliases and the rollouts say, not a replay of old commands (an admin load
    that should outlive the replicas running now moves an alias instead)."""

    def __init__(self, engine: Engine, origin: str, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.origin = origin
        self.clock = clock
        self._seen: int | None = None
        self.unreplayed: list[dict[str, Any]] = []
        """Commands read from the log and not applied here yet."""

    def publish(self, command: dict[str, Any]) -> None:
        with Session(self.engine) as session, session.begin():
            session.add(FleetCommandRow(origin=self.origin, body=command, created=self.clock()))

    def new_commands(self) -> list[dict[str, Any]]:
        """Commands other replicas published since the last call, oldest first (none at
        the first call, which only marks where this reader starts)."""
        with Session(self.engine) as session:
            if self._seen is None:
                self._seen = session.scalar(select(func.max(FleetCommandRow.id))) or 0
                return []
            rows = session.scalars(
                select(FleetCommandRow)
                .where(FleetCommandRow.id > self._seen)
                .order_by(FleetCommandRow.id)
            ).all()
            if rows:
                self._seen = rows[-1].id
            return [dict(row.body) for row in rows if row.origin != self.origin]
