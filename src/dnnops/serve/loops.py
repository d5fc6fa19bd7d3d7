"""The server's background loops, all run by one guarded runner.

Each loop is a name and a tick: the runner times every tick, counts a failed one under the
loop's own name (``dnnops_controller_errors_total{loop}``), logs it with its stack, and
backs off (the period doubled per failure in a row, up to ``MAX_BACKOFF_S``) so a store
that is away is not hammered; a tick that succeeds returns to the period. A loop marked
``leader_only`` ticks only in the process that leads (one alert, one retraining, not one
per worker). No loop guards itself any more: the rollout controller, the monitoring loop,
the fleet's lease and log, the workers' shared metrics, the explanation sampler and the
event-loop watchdog all run here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger("dnnops.serve")

MAX_BACKOFF_S = 60.0
"""The longest wait after failures in a row (or the period, when that is longer)."""


@dataclass(frozen=True)
class BackgroundLoop:
    name: str
    """The ``loop`` label of its metrics."""
    every_s: float
    tick: Callable[[], Awaitable[None]]
    leader_only: bool = False
    """Tick only in the process that leads the fleet (and its workers)."""
    wait_first: bool = False
    """Sleep one period before the first tick (monitoring reads traffic that must arrive)."""
    slow_s: float | None = None
    """Log a warning when a tick takes longer."""


Observe = Callable[[str, float, bool], None]
"""(loop, seconds, failed): where the runner reports each tick (``ServerMetrics``)."""


class LoopRunner:
    def __init__(
        self,
        observe: Observe,
        leads: Callable[[], bool],
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.observe = observe
        self.leads = leads
        self.sleep = sleep
        self.clock = clock

    def start(self, loops: list[BackgroundLoop]) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self.run(loop), name=loop.name) for loop in loops]

    async def run(self, loop: BackgroundLoop) -> None:
        """Tick ``loop`` until cancelled; a failing tick is counted and retried, never fatal."""
        failures = 0
        if loop.wait_first:
            await self.sleep(loop.every_s)
        while True:
            if loop.leader_only and not self.leads():
                await self.sleep(loop.every_s)
                continue
            started = self.clock()
            failed = False
            try:
                await loop.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                failed = True
                failures += 1
                log.exception(
                    "%s loop: tick failed (%d in a row); retrying in %.1f s",
                    loop.name,
                    failures,
                    backoff(loop.every_s, failures),
                )
            else:
                failures = 0
            elapsed = self.clock() - started
            self.observe(loop.name, elapsed, failed)
            if loop.slow_s is not None and elapsed > loop.slow_s:
                log.warning("%s loop: a tick took %.1f s", loop.name, elapsed)
            await self.sleep(backoff(loop.every_s, failures))


def backoff(every_s: float, failures: int) -> float:
    """The wait before the next tick: the period, doubled per failure in a row, capped."""
    if failures == 0:
        return every_s
    return min(every_s * 2.0**failures, max(MAX_BACKOFF_S, every_s))
