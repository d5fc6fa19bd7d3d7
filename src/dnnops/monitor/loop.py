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

from dnnops.monitor.judgements.alerts import Alert, AlertStore, alerts_from_report, deliver
from dnnops.monitor.ports import MonitoredServer
from dnnops.predlog.retention import purge_before

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
        server: MonitoredServer,
        alerts: AlertStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.server = server
        self.alerts = alerts
        self.clock = clock
        self.retraining: subprocess.Popen[bytes] | None = None
        self._last_retrain_check = 0.0

    async def tick(self) -> None:
        server = self.server
        if server.logs.retention is not None:
            cutoff = self.clock() - server.logs.retention
            purged = await asyncio.to_thread(purge_before, server.logs_dir, cutoff)
            if purged.segments:
                log.info("logs.retention deleted %d segment(s)", len(purged.segments))
            shared = await asyncio.to_thread(server.purge_shared_log, cutoff)
            if shared:
                log.info("logs.retention deleted %d segment(s) from the fleet's store", shared)
        report = await server.monitoring_report()
        report = report.of_endpoints(server.served_endpoints())
        candidates = (
            server.rollout_candidates() if server.monitor.suppress_during_rollout else set()
        )
        server.observe_report(report)
        firing, held = suppress_rollout_candidates(
            alerts_from_report(report, runbooks=server.monitor.runbook_url), candidates
        )
        fresh = await asyncio.to_thread(self.alerts.record, firing)
        if fresh:
            await asyncio.to_thread(deliver, fresh, server.monitor.webhook_url)
        if held:
            log.info("held back during a rollout: %s", ", ".join(a.key for a in held))
        self._maybe_retrain()

    def _maybe_retrain(self) -> None:
        """Start ``dnnops retrain -c FILE`` (it decides on the triggers itself) at most
        every ``retrain.check_every``, one at a time, in a child process so training never
        competes with request handling for this process's interpreter."""
        server = self.server
        if not server.retrain.background or server.project_file is None:
            return
        if self.retraining is not None and self.retraining.poll() is None:
            return
        now = self.clock()
        if now - self._last_retrain_check < server.retrain.check_every:
            return
        self._last_retrain_check = now
        command = [sys.executable, "-m", "dnnops", "retrain", "-c", str(server.project_file)]
        command += ["--quiet", "--json"]
        log.info("checking the retraining triggers: %s", " ".join(command))
        self.retraining = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
