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
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import yaml

from dnnops.monitor.alertmanager import post_to_alertmanager, postable_alerts
from dnnops.monitor.judgements.alerts import MONITOR_KINDS, Alert, deliver, evaluate_alerts
from dnnops.monitor.judgements.runbooks import runbook_url
from dnnops.monitor.ports import MonitoredServer
from dnnops.monitor.retrain_runs import RetrainProcess, RetrainRun
from dnnops.predlog.retention import purge_before
from dnnops.registry.alerts import AlertStore, Recorded, StoredAlert

log = logging.getLogger("dnnops.monitor")


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
        self.retraining: RetrainProcess | None = None
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
        report = (await server.monitoring_report()).of_endpoints(server.served_endpoints())
        server.observe_report(report)
        candidates = (
            server.rollout_candidates() if server.monitor.suppress_during_rollout else set()
        )
        firing = await asyncio.to_thread(self.alerts.firing_keys, MONITOR_KINDS)
        decided = evaluate_alerts(report, candidates, monitor=server.monitor, firing=firing)
        changed = await asyncio.to_thread(self.alerts.record, decided.firing, MONITOR_KINDS)
        if changed:
            await asyncio.to_thread(self._deliver, changed)
        if decided.held:
            log.info("held back during a rollout: %s", ", ".join(a.key for a in decided.held))
        resolved = [*changed.resolved, *await self._collect_retraining()]
        resolved += await self._clear_rollbacks()
        if server.monitor.alertmanager_url:
            url = server.monitor.alertmanager_url
            await asyncio.to_thread(self._to_alertmanager, url, resolved)
        self._maybe_retrain()

    async def _collect_retraining(self) -> list[StoredAlert]:
        """Record a background retraining that ended: its run, and the ``retraining``
        alert raised when it failed or resolved when it did not (returned)."""
        finished = self.retraining.finished() if self.retraining is not None else None
        if finished is None:
            return []
        self.retraining = None
        self.server.retrain_finished(finished)
        firing = []
        if finished.outcome == "failed":
            firing.append(retraining_alert(finished, self.server.monitor.runbook_url))
        else:
            log.info("background retraining of %s: %s", finished.model, finished.summary)
        changed = await asyncio.to_thread(self.alerts.record, firing, ("retraining",))
        if changed:
            await asyncio.to_thread(self._deliver, changed)
        return changed.resolved

    async def _clear_rollbacks(self) -> list[StoredAlert]:
        """Resolve the page of a rollback once its candidate takes no traffic: the rollback
        is done, the stable version answers alone (the page had said so once)."""
        firing = await asyncio.to_thread(self.alerts.list, "firing", 500)
        pages = [a for a in firing if a.kind == "rollout"]
        if not pages:
            return []
        taking = self.server.versions_taking_traffic()
        done = [a.key for a in pages if rolled_back_version(a.key) not in taking]
        resolved = await asyncio.to_thread(self.alerts.resolve, done)
        if resolved:
            await asyncio.to_thread(self._deliver, Recorded([], resolved))
        return resolved

    def _to_alertmanager(self, url: str, resolved: list[StoredAlert]) -> None:
        """Every alert still firing, and those resolved this evaluation, to Alertmanager."""
        firing = self.alerts.list("firing", 1000)
        batch = postable_alerts(
            firing,
            resolved,
            now=datetime.now(UTC),
            evaluate_every_s=self.server.monitor.evaluate_every or 60.0,
        )
        post_to_alertmanager(url, batch, counted=self.server.alert_delivered)

    def _deliver(self, changed: Recorded[Alert]) -> None:
        """Deliver what an evaluation changed, firing and resolved, counting outcomes."""
        deliver(
            changed.fresh,
            self.server.monitor.webhook_url,
            resolved=changed.resolved,
            counted=self.server.alert_delivered,
        )

    def _maybe_retrain(self) -> None:
        """Start ``dnnops retrain -c FILE`` (it decides on the triggers itself) at most
        every ``retrain.check_every``, one at a time, in a child process so training never
        competes with request handling for this process's interpreter."""
        server = self.server
        if not server.retrain.background or server.project_file is None:
            return
        if self.retraining is not None:  # one at a time: collected when it ends
            return
        now = self.clock()
        if now - self._last_retrain_check < server.retrain.check_every:
            return
        self._last_retrain_check = now
        model = project_name(server.project_file)
        log.info("checking the retraining triggers of %s (%s)", model, server.project_file)
        self.retraining = RetrainProcess(
            server.project_file, model, server.logs_dir / RETRAIN_FOLDER
        )


def rolled_back_version(key: str) -> tuple[str, str]:
    """(model, candidate) of a rollback page's key ``model@candidate/rollout/ID``."""
    model, _, version = key.split("/", 1)[0].partition("@")
    return model, version


def project_name(project_file: Path) -> str:
    """The project's name, read leniently: a file edited into an invalid one since the
    server started is the retraining's error to report, not this loop's to raise."""
    try:
        found = yaml.safe_load(project_file.read_text()) or {}
    except (OSError, yaml.YAMLError):
        found = {}
    name = found.get("name") if isinstance(found, dict) else None
    return str(name) if name else project_file.stem


RETRAIN_FOLDER = "retrain"
"""Under the logs: each background retraining's answer (JSON) and log."""


def retraining_alert(run: RetrainRun, runbooks: str) -> Alert:
    """A ticket: the model keeps serving, but it will not be renewed until someone looks."""
    return Alert(
        key=f"{run.model}|retraining",
        model=run.model,
        severity="ticket",
        kind="retraining",
        summary=f"background retraining of {run.model} failed: {run.summary}",
        details={
            "exit_code": run.exit_code,
            "duration_s": run.duration_s,
            "log": run.log,
            "runbook_url": runbook_url("retraining", runbooks),
        },
    )
