"""How long the event loop was held: a gauge for dashboards and a stack for the log.

The loop answers every request, so anything that holds it (a module imported on first
use, a synchronous registry read, a model session created in place) delays requests that
are already queued. A probe task measures how late a short sleep wakes up
(``dnnops_event_loop_lag_seconds``: the worst lag of the last ``WINDOW_S``), and a
watchdog thread logs where the loop is stuck when a stall passes ``STALL_S``: the stack
that found a 1 s ``scipy.stats`` import inside a canary judgement.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable

log = logging.getLogger("dnnops.serve")
PROBE_S = 0.05
"""How often the probe sleeps; lag is how much later than this it wakes."""
WINDOW_S = 10.0
STALL_S = 0.25
"""A stall this long is logged with the loop's stack (once per stall)."""


class LoopLag:
    """The probe (a task on the loop) and the watchdog (a daemon thread)."""

    def __init__(
        self, report: Callable[[float], None], clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.report = report
        self.clock = clock
        self.beat = clock()
        self._recent: deque[tuple[float, float]] = deque()
        self._loop_thread: int | None = None
        self._stop = threading.Event()

    async def run(self) -> None:
        """Probe until cancelled; each wake-up reports the worst lag of the window."""
        self._loop_thread = threading.get_ident()
        watchdog = threading.Thread(target=self._watch, name="dnnops-loop-watchdog", daemon=True)
        watchdog.start()
        try:
            while True:
                before = self.clock()
                self.beat = before
                await asyncio.sleep(PROBE_S)
                self.report(self.observe(self.clock() - before - PROBE_S))
        finally:
            self._stop.set()

    def observe(self, lag: float) -> float:
        """Record one lag; the worst of the last ``WINDOW_S``."""
        now = self.clock()
        self._recent.append((now, max(lag, 0.0)))
        while self._recent and self._recent[0][0] < now - WINDOW_S:
            self._recent.popleft()
        return max(value for _, value in self._recent)

    def _watch(self) -> None:
        logged_for = -1.0
        while not self._stop.wait(PROBE_S):
            beat = self.beat
            stalled = self.clock() - beat - PROBE_S
            if stalled < STALL_S or beat == logged_for or self._loop_thread is None:
                continue
            logged_for = beat
            frame = sys._current_frames().get(self._loop_thread)
            where = "".join(traceback.format_stack(frame)[-8:]) if frame else "(no frame)\n"
            log.warning(
                "the event loop has been held for %.0f ms; requests wait meanwhile. It is at:\n%s",
                stalled * 1000,
                where.rstrip(),
            )
