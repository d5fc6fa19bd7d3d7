"""The server's own monitoring: every ``monitor.evaluate_every`` it builds its report,
raises and resolves alerts, and, with ``retrain.background``, runs ``dnnops retrain`` in
a child process when a trigger fires.

Alerts of a version that is the candidate of a rollout in progress are held back: the
rollout controller judges that version against the stable one every interval and pages
on its own when it rolls back, so a second page for the same fault would be noise.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

from dnnops.monitor.alerts import Alert, AlertStore, alerts_from_report, deliver
from dnnops.monitor.report import build_report
from dnnops.serve.state import ServerState

log = logging.getLogger("dnnops.monitor")


def suppress_rollout_candidates(
    alerts: Sequence[Alert], candidates: set[tuple[str, str]]
) -> tuple[list[Alert], list[Alert]]:
    """(alerts to raise, alerts held back) given the (model, version) pairs in rollout."""
    kept: list[Alert] = []
    held: list[Alert] = []
    for alert in alerts:
        where = alert.key.split("/", 1)[0]  # "model@version/..."
        model, _, version = where.partition("@")
        (held if (model, version) in candidates else kept).append(alert)
    return kept, held


class MonitorLoop:
    def __init__(
        self,
        state: ServerState,
        alerts: AlertStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.alerts = alerts
        self.clock = clock
        self.retraining: subprocess.Popen[bytes] | None = None
        self._last_retrain_check = 0.0

    async def run(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            if not self.state.leads():
                continue  # a sibling worker evaluates: one alert and one retraining, not N
            started = time.perf_counter()
            try:
                await self.tick()
            except Exception:
                log.exception("monitoring tick failed; retrying next tick")
                self.state.metrics.controller_errors.inc()
            self.state.metrics.monitor_tick_seconds.observe(time.perf_counter() - started)

    async def tick(self) -> None:
        state = self.state
        in_memory = state.loaded_versions()
        report = await asyncio.to_thread(
            build_report,
            state.registry,
            state.logger.logs_dir,
            state.monitor.window,
            state.monitor,
            state.slo,
            None,
            in_memory,
            state.report_digests(),
        )
        candidates = {
            (str(e.rollout["model"]), str(e.rollout["candidate"]))
            for e in state.endpoints.values()
            if e.rollout and e.rollout.get("status") in ("running", "awaiting_approval")
        }
        if not state.monitor.suppress_during_rollout:
            candidates = set()
        state.metrics.observe_report(report)
        firing, held = suppress_rollout_candidates(alerts_from_report(report), candidates)
        fresh = await asyncio.to_thread(self.alerts.record, firing)
        if fresh:
            await asyncio.to_thread(deliver, fresh, state.monitor.webhook_url)
        if held:
            log.info("held back during a rollout: %s", ", ".join(a.key for a in held))
        self._maybe_retrain()

    def _maybe_retrain(self) -> None:
        """Start ``dnnops retrain -c FILE`` (it decides on the triggers itself) at most
        every ``retrain.check_every``, one at a time, in a child process so training never
        competes with request handling for this process's interpreter."""
        state = self.state
        if not state.retrain.background or state.project_file is None:
            return
        if self.retraining is not None and self.retraining.poll() is None:
            return
        now = self.clock()
        if now - self._last_retrain_check < state.retrain.check_every:
            return
        self._last_retrain_check = now
        command = [sys.executable, "-m", "dnnops", "retrain", "-c", str(state.project_file)]
        command += ["--quiet", "--json"]
        log.info("checking the retraining triggers: %s", " ".join(command))
        self.retraining = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
