"""Leadership across replicas: servers on several hosts that share one PostgreSQL metadata
database elect one leader through a lease row (``registry.leases``), so a rollout step is
judged, an alert raised and a retraining started once per fleet, not once per replica.

Inside a replica its workers still elect one local leader with a file lock
(``serve.group``); only that worker contends for the fleet's lease. A leader renews every
third of ``serve.lease`` and counts itself the leader only until 80% of the lease has
passed since its last successful renewal: a leader cut off from the database (or stalled)
stops deciding before the lease runs out for the others, who then take it with the next
epoch. A rollout decision is also a compare-and-swap on the rollout's row
(``RolloutStore.save``), so even a leader whose clock drifted cannot overwrite a decision
taken since it last read.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable

from dnnops.registry.leases import Lease

log = logging.getLogger("dnnops.serve")
LEASE_NAME = "dnnops-leader"
SAFETY = 0.8
"""Share of the lease a holder trusts after a renewal (the rest covers clock drift and
the time the renewal itself took)."""


def holder_name() -> str:
    """Who holds the lease, as an operator reads it: host, process and a nonce."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


class FleetLeadership:
    def __init__(
        self,
        lease: Lease,
        *,
        contends: Callable[[], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lease = lease
        self.contends = contends
        """Whether this process may lead at all (its replica's local leader)."""
        self.clock = clock
        self.epoch: int | None = None
        self._trusted_until = 0.0

    def leads(self) -> bool:
        return self.epoch is not None and self.clock() < self._trusted_until

    async def renew(self) -> None:
        """Take or renew the lease once (off the event loop)."""
        if not self.contends():
            self.epoch = None
            return
        started = self.clock()
        try:
            held = await asyncio.to_thread(self.lease.hold)
        except Exception as exc:  # the database is away: lead on only while still trusted
            log.warning("fleet lease: cannot reach the metadata database: %s", exc)
            return
        if held is None:
            self.epoch = None
            return
        if held.epoch != self.epoch:
            log.info("fleet lease: leading as %s (epoch %d)", self.lease.holder, held.epoch)
        self.epoch = held.epoch
        self._trusted_until = started + SAFETY * self.lease.ttl_s

    async def release(self) -> None:
        if self.epoch is None:
            return
        self.epoch = None
        try:
            await asyncio.to_thread(self.lease.release)
        except Exception as exc:  # it expires on its own
            log.warning("fleet lease: could not release it: %s", exc)
