"""The ASGI app's factory: the routes of every route module's table, one error path
(``install_error_path``), the background loops (``serve/loops.py``) in the lifespan, and
the inference hot path (``serve/hot_path.py``) in front of FastAPI."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from dnnops.monitor.loop import MonitorLoop
from dnnops.registry.alerts import AlertStore
from dnnops.rollout.controller import SLOW_TICK_S, RolloutController
from dnnops.rollout.store import RolloutStore
from dnnops.serve import (
    dashboard_routes,
    explain_routes,
    feedback_routes,
    health_routes,
    hot_path,
    operations_routes,
    outcome_routes,
    registry_routes,
    rollout_routes,
    runbook_routes,
)
from dnnops.serve.control import ServerControl
from dnnops.serve.explain_routes import explanation_sampler
from dnnops.serve.grpc_server import start_grpc
from dnnops.serve.hot_path import InferenceFastPath
from dnnops.serve.http import (
    add_routes,
    install_error_path,
)
from dnnops.serve.loop_lag import PROBE_S, LoopLag
from dnnops.serve.loops import BackgroundLoop, LoopRunner
from dnnops.serve.state import ServerState
from dnnops.version import __version__

log = logging.getLogger("dnnops.serve")


ROUTE_TABLES = [
    health_routes.ROUTES,
    hot_path.ROUTES,
    feedback_routes.ROUTES,
    outcome_routes.ROUTES,
    operations_routes.ROUTES,
    rollout_routes.ROUTES,
    dashboard_routes.ROUTES,
    explain_routes.ROUTES,
    runbook_routes.ROUTES,
    registry_routes.ROUTES,
]
"""Every route module's table, in the order the reference lists them."""


def create_app(state: ServerState) -> InferenceFastPath:
    control = ServerControl(state)
    controller = RolloutController(
        control, RolloutStore(state.registry.engine), AlertStore(state.registry.engine)
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.start()
        if state.fleet is not None:
            await state.fleet.renew()  # know whether this replica leads before the first tick
        elif state.group is None:  # a lone process leads, without a lease to say so
            state.metrics.leader.set(1.0)
        await controller.tick()  # resume a rollout a restart interrupted before serving
        runner = LoopRunner(state.metrics.observe_loop, state.leads)
        tasks = runner.start(background_loops(state, control, controller))
        grpc_port = state.serve.grpc_port
        grpc = await start_grpc(state, state.bind_host, grpc_port) if grpc_port else None
        yield
        if grpc is not None:
            await grpc.stop(state.serve.drain_timeout)
        for task in tasks:
            task.cancel()
        if state.fleet is not None:
            await state.fleet.release()  # another replica leads at once, not a lease later
        await state.stop()

    app = FastAPI(title="dnnops", version=__version__, lifespan=lifespan)
    app.state.dnnops = state
    install_error_path(app)
    app.state.controller = controller  # the rollout routes start and undo rollouts with it
    for routes in ROUTE_TABLES:
        add_routes(app, routes)
    return InferenceFastPath(app, state)


def background_loops(
    state: ServerState, control: ServerControl, controller: RolloutController
) -> list[BackgroundLoop]:
    """What runs beside the requests, each under ``serve/loops.py``'s one guarded runner."""
    policies = state.policies
    lag = LoopLag(state.metrics.event_loop_lag.set)
    loops = [
        BackgroundLoop("rollout", controller.tick_s, controller.tick, slow_s=SLOW_TICK_S),
        BackgroundLoop("loop_lag", PROBE_S, lag.run),  # its tick probes until cancelled
    ]
    fleet, fleet_log = state.fleet, state.fleet_log
    if fleet is not None:

        async def hold_the_lease() -> None:
            """Renew the fleet's lease; ``dnnops_leader`` says who leads."""
            await fleet.renew()
            state.metrics.leader.set(1.0 if state.leads() else 0.0)

        loops.append(BackgroundLoop("lease", fleet.lease.ttl_s / 3, hold_the_lease))
    if fleet_log is not None:

        async def share_the_log() -> None:
            """Ship this replica's new log frames and pull its siblings'; on one host only
            the workers' leader does (its siblings write to the same folder)."""
            if state.leads_here():
                await asyncio.to_thread(fleet_log.ship)
                await asyncio.to_thread(fleet_log.pull)

        loops.append(BackgroundLoop("fleet_log", policies.logs.ship_every, share_the_log))
    if policies.monitor.evaluate_every:
        monitoring = MonitorLoop(control, AlertStore(state.registry.engine))
        every = policies.monitor.evaluate_every
        loops.append(
            BackgroundLoop("monitor", every, monitoring.tick, leader_only=True, wait_first=True)
        )
    if state.metrics.shared_dir is not None:

        async def refresh_shared_metrics() -> None:
            """A worker's queue depths and CPU, copied to the shared metric files."""
            state.metrics.refresh()

        loops.append(BackgroundLoop("shared_metrics", 1.0, refresh_shared_metrics))
    explain = policies.monitor.explain
    if explain.sample > 0:
        loops.append(
            BackgroundLoop(
                "explanations",
                explain.every,
                explanation_sampler(state),
                leader_only=True,
                wait_first=True,
            )
        )
    return loops
