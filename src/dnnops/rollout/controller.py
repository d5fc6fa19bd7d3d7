"""The rollout controller: runs inside the server, compares each endpoint's desired traffic
(the persisted rollout) with the router's, and checks the candidate every interval.

Each tick is guarded and timed (Ray Serve's controller rule: a control loop never dies and
always reports). Decisions come from ``policy``; this module only does the I/O: the
store, the registry, the router, the alert sink.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace

from dnnops.config import RolloutConfig
from dnnops.errors import DnnopsError
from dnnops.evaluate.calibration import Calibrator
from dnnops.monitor.judgements.alerts import Alert, deliver
from dnnops.monitor.judgements.runbooks import runbook_url
from dnnops.registry.alerts import AlertStore
from dnnops.registry.loader import calibrator_of
from dnnops.rollout.policy import (
    RolloutState,
    Transition,
    Verdict,
    advance,
    evaluate_gates,
    is_due,
    verdict,
)
from dnnops.rollout.ports import ServerPort, Traffic
from dnnops.rollout.store import RolloutStore, StaleRollout
from dnnops.rollout.window import compare_window

log = logging.getLogger("dnnops.rollout")
SLOW_TICK_S = 5.0
"""A tick this long is logged (``serve/loops.py`` runs the ticks)."""


class RolloutController:
    def __init__(
        self,
        server: ServerPort,
        store: RolloutStore,
        alerts: AlertStore,
        *,
        clock: Callable[[], float] = time.time,
        tick_s: float = 1.0,
    ) -> None:
        self.server = server
        self.store = store
        self.alerts = alerts
        self.clock = clock
        self.tick_s = tick_s
        self._running: dict[str, int] = {}
        """Endpoint -> id of the rollout this process applied to the router."""
        self._calibrator_cache: dict[tuple[str, str], Calibrator | None] = {}

    async def tick(self) -> None:
        await self.server.follow_siblings()
        for endpoint in self.server.all_traffic():
            await self.reconcile(endpoint)

    async def reconcile(self, endpoint: Traffic) -> None:
        rollout = await asyncio.to_thread(self.store.latest, endpoint.name)
        if rollout is None:
            return
        if rollout.status == "running":
            # Every worker routes as the rollout says; only the leader judges the step.
            if await self._apply(endpoint, rollout) and self.server.leads():
                await self._check_if_due(endpoint, rollout)
        elif self._running.get(endpoint.name) == rollout.id:
            # Ended elsewhere (the CLI, or a sibling worker): whoever ended it updated the
            # registry and raised the alert; here only the router follows.
            await self._conclude(endpoint, rollout, decided_here=False)
        elif rollout.active:
            endpoint.rollout = rollout  # waiting for approval: shown, not applied

    async def start(self, rollout: RolloutState) -> None:
        """Apply a rollout created just now (the admin route) without waiting for a tick."""
        endpoint = self.server.traffic(rollout.endpoint)
        if endpoint is not None and rollout.status == "running":
            await self._apply(endpoint, rollout)

    async def rollback(self, endpoint: Traffic, reason: str) -> RolloutState | None:
        """Operator's rollback: end the active rollout as failed, or, with none active, put
        the version the last promotion replaced back in front."""
        rollout = await asyncio.to_thread(self.store.active, endpoint.name)
        if rollout is not None:
            ended = replace(rollout, status="rolled_back", updated=self.clock(), reason=reason)
            await asyncio.to_thread(self.store.save, ended, rollout)
            await self._conclude(endpoint, ended)
            return ended
        last = await asyncio.to_thread(self.store.last_promoted, endpoint.name)
        if last is None or last.baseline is None or str(last.candidate) != endpoint.live:
            return None
        await self._restore_baseline(endpoint, last, last.baseline, reason=reason)
        return last

    # -- applying desired state ----------------------------------------------------------

    async def _apply(self, endpoint: Traffic, rollout: RolloutState) -> bool:
        """Make the router match the rollout's step; False when the candidate cannot load
        (the rollout is then rolled back)."""
        candidate = str(rollout.candidate)
        if candidate not in endpoint.versions:
            try:
                record = await asyncio.to_thread(
                    self.server.registry.resolve, rollout.model, rollout.candidate
                )
                await self.server.load(endpoint.name, record, make_live=False)
            except Exception as exc:
                log.exception("rollout %s: cannot load the candidate", rollout.id)
                failed = replace(
                    rollout,
                    status="rolled_back",
                    updated=self.clock(),
                    reason=f"the candidate failed to load: {type(exc).__name__}: {exc}",
                )
                try:
                    await asyncio.to_thread(self.store.save, failed, rollout)
                except StaleRollout:
                    return False  # aborted meanwhile: the next tick concludes that instead
                await self._conclude(endpoint, failed)
                return False
        if rollout.weight == 0:
            endpoint.set_traffic(None, 0.0, shadow=candidate)
        else:
            endpoint.set_traffic(candidate, float(rollout.weight))
        endpoint.rollout = rollout
        self._running[endpoint.name] = rollout.id
        self.server.observe_weight(endpoint.name, rollout.weight)
        return True

    async def _check_if_due(self, endpoint: Traffic, rollout: RolloutState) -> None:
        policy = RolloutConfig.model_validate(rollout.policy)
        now = self.clock()
        if not is_due(rollout, now, policy.interval) or endpoint.live is None:
            return
        transition, result = await asyncio.to_thread(
            self._judge, endpoint.name, endpoint.live, rollout, policy=policy, now=now
        )
        log.info(
            "rollout %s of %s@%s at %s%%: %s",
            rollout.id,
            rollout.model,
            rollout.candidate,
            rollout.weight,
            result,
        )
        try:
            await asyncio.to_thread(self.store.save, transition.state, rollout)
        except StaleRollout as exc:  # aborted while we checked: that decision stands
            log.info("%s", exc)
            return
        await self._act(endpoint, transition)

    def _judge(
        self, endpoint: str, live: str, rollout: RolloutState, *, policy: RolloutConfig, now: float
    ) -> tuple[Transition, Verdict]:
        """Read the step's window from the logs and decide (in a thread: the log reads and
        the statistics are the slowest part of a tick, and the event loop answers
        requests meanwhile)."""
        candidate, stable = compare_window(
            self.server.logs_dir,
            endpoint,
            str(rollout.candidate),
            stable=live,
            shadow=rollout.weight == 0,
            start=rollout.step_started,
            end=now,
            calibrators=(
                self._calibrators(rollout.model, [str(rollout.candidate), live])
                if policy.max_estimated_accuracy_drop is not None
                else None
            ),
            kpis=[k for k in self.server.kpis if k.name in {g.kpi for g in policy.kpi_gates}],
        )
        gates = evaluate_gates(candidate, stable, policy, kpis=self.server.kpis)
        result = verdict(
            candidate, gates, policy.min_requests, min_success_rate=policy.min_success_rate
        )
        return advance(
            rollout, result, gates, now=now, failure_threshold=policy.failure_threshold
        ), result

    def _calibrators(self, model: str, versions: list[str]) -> dict[str, Calibrator | None]:
        """The versions' calibrators (read once each: a version's files never change)."""
        registry = self.server.registry
        for version in versions:
            if (model, version) not in self._calibrator_cache:
                try:
                    found = calibrator_of(registry, registry.resolve(model, version))
                except DnnopsError:
                    found = None  # deleted or unreadable: this gate skips
                self._calibrator_cache[(model, version)] = found
        return {v: self._calibrator_cache[(model, v)] for v in versions}

    async def _act(self, endpoint: Traffic, transition: Transition) -> None:
        if transition.action == "set_traffic":
            await self._apply(endpoint, transition.state)
        elif transition.action in ("promote", "rollback"):
            await self._conclude(endpoint, transition.state)
        else:
            endpoint.rollout = transition.state

    # -- ends -------------------------------------------------------------------------

    async def _conclude(
        self, endpoint: Traffic, rollout: RolloutState, decided_here: bool = True
    ) -> None:
        """Carry out a finished rollout on the router and, when this process decided it, in
        the registry and the alert sink.

        The endpoint reports the rollout's end only after the registry moved: whoever sees
        "promoted" or "rolled_back" finds the production alias or the failed status there."""
        candidate = str(rollout.candidate)
        registry = self.server.registry
        if rollout.status == "promoted":
            if decided_here:  # the candidate keeps its last step's share meanwhile
                await asyncio.to_thread(
                    registry.set_alias,
                    rollout.model,
                    "production",
                    rollout.candidate,
                    reason=f"rollout {rollout.id} promoted: {rollout.reason}",
                )
            self._end_traffic(endpoint)
            previous, endpoint.live = endpoint.live, candidate
            endpoint.rollout = rollout
            if previous is not None and previous != candidate:
                self.server.retire_later(endpoint.name, previous)
            if decided_here:
                log.warning("rollout %s: %s@%s promoted", rollout.id, rollout.model, candidate)
            return
        self._end_traffic(endpoint)  # a failed candidate stops answering at once
        if rollout.status == "rolled_back" and decided_here:
            await asyncio.to_thread(
                registry.set_status,
                rollout.model,
                rollout.candidate,
                "failed",
                reason=rollout.reason,
            )
        endpoint.rollout = rollout
        if rollout.status == "rolled_back" and decided_here:
            await self._alert(rollout)
        if endpoint.live != candidate:
            self.server.retire_later(endpoint.name, candidate)
        log.warning("rollout %s: %s (%s)", rollout.id, rollout.status, rollout.reason)

    def _end_traffic(self, endpoint: Traffic) -> None:
        endpoint.set_traffic(None)
        self._running.pop(endpoint.name, None)
        self.server.observe_weight(endpoint.name, 0)

    async def _restore_baseline(
        self, endpoint: Traffic, last: RolloutState, baseline: int, *, reason: str
    ) -> None:
        record = await asyncio.to_thread(self.server.registry.resolve, last.model, baseline)
        await self.server.load_everywhere(endpoint.name, record, make_live=True)
        registry = self.server.registry
        await asyncio.to_thread(
            registry.set_alias, last.model, "production", baseline, reason=f"rollback: {reason}"
        )
        await asyncio.to_thread(
            registry.set_status, last.model, last.candidate, "rolled_back", reason=reason
        )

    async def _alert(self, rollout: RolloutState) -> None:
        alert = Alert(
            key=f"{rollout.model}@{rollout.candidate}/rollout/{rollout.id}",
            model=rollout.model,
            severity="page",
            kind="rollout",
            summary=(
                f"{rollout.model}@{rollout.candidate} rolled back at {rollout.weight}% "
                f"traffic: {rollout.reason}"
            ),
            details={
                "rollout": rollout.id,
                "endpoint": rollout.endpoint,
                "step": rollout.step,
                "runbook_url": runbook_url("rollout", self.server.runbooks),
            },
        )
        if await asyncio.to_thread(self.alerts.event, alert):
            await asyncio.to_thread(deliver, [alert], self.server.webhook_url)
