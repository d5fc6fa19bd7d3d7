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
        logged_for, last_log, quiet = -1.0, -LOG_EVERY_S, 0
        while not self._stop.wait(PROBE_S):
            beat = self.beat
            stalled = self.clock() - beat - PROBE_S
            if stalled < STALL_S or beat == logged_for or self._loop_thread is None:
                continue
            logged_for = beat
            if self.clock() - last_log < LOG_EVERY_S:
                quiet += 1  # counted, said with the next log line
                continue
            frame = sys._current_frames().get(self._loop_thread)
            where = holding_frames(traceback.extract_stack(frame)) if frame else "(no frame)"
            since = f" ({quiet} more stalls since the last report)" if quiet else ""
            log.warning(
                "the event loop has been held for %.0f ms%s; requests wait meanwhile. "
                "It is at:\n%s",
                stalled * 1000,
                since,
                where,
            )
            last_log, quiet = self.clock(), 0


LOG_EVERY_S = 60.0
"""At most one stall report a minute: a slow stretch is one log entry, not hundreds."""
FRAMES = 6
LOOP_MODULES = ("asyncio", "uvicorn", "uvloop", "selectors", "threading", "starlette", "anyio")
"""Frames of the machinery that runs the loop: the same for every stall, so left out."""


def holding_frames(stack: traceback.StackSummary) -> str:
    """The frames a loop callback runs (those below the innermost frame of the loop's
    machinery: what holds the loop), innermost last; the server's outer frames (main,
    uvicorn's startup) are left out. When nothing runs below the machinery, the loop is
    busy with many short callbacks rather than one long call, and that is said instead."""
    inner = max((i for i, f in enumerate(stack) if _machinery(f.filename)), default=-1)
    own = [f for f in list(stack)[inner + 1 :] if not _machinery(f.filename)]
    if not own:
        innermost = stack[-1] if stack else None
        at = f"{innermost.filename}:{innermost.lineno}" if innermost else "?"
        return f"  in the loop's own machinery ({at}): many short callbacks, no single holder"
    return "".join(traceback.format_list(own[-FRAMES:])).rstrip()


def _machinery(filename: str) -> bool:
    parts = filename.replace("\\", "/").split("/")
    return filename.startswith("<frozen") or any(m in parts for m in LOOP_MODULES)
