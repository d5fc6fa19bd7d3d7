"""Leases in the metadata database: one holder at a time across every process that shares
it, on any host, with no coordinator but the database.

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

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dnnops.registry.tables import LeaseRow


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
