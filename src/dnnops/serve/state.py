"""Everything one server process holds: endpoints, metrics, logs, readiness."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dnnops.config import MonitorConfig, RetrainConfig, RolloutConfig, ServeConfig, SloConfig
from dnnops.monitor.digest_store import DigestStore
from dnnops.monitor.report import digest_store
from dnnops.registry.loader import LoadedVersion, load_version
from dnnops.registry.versions import ModelRegistry, VersionRecord
from dnnops.serve.group import WorkerGroup
from dnnops.serve.metrics import ServerMetrics
from dnnops.serve.predictions import PredictionLogger
from dnnops.serve.runtime import Endpoint, VersionRuntime

log = logging.getLogger("dnnops.serve")
RETIRE_GRACE_S = 1.0


@dataclass(frozen=True)
class Target:
    """What to serve: endpoint ``name`` answers with ``model@ref``."""

    endpoint: str
    model: str
    ref: str


@dataclass
class ServerState:
    registry: ModelRegistry
    serve: ServeConfig
    metrics: ServerMetrics
    logger: PredictionLogger
    targets: list[Target]
    admin_token: str | None = None
    labels_token: str | None = None
    """``DNNOPS_LABELS_TOKEN``: may send ``/v1/feedback`` (admin may too)."""
    read_token: str | None = None
    """``DNNOPS_READ_TOKEN``: may read the tracer, the dashboard data and the monitor."""

    @property
    def secured(self) -> bool:
        """Whether any token is set: then labels and reads need one too."""
        return any((self.admin_token, self.labels_token, self.read_token))

    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    slo: SloConfig = field(default_factory=SloConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)
    project_file: Path | None = None
    """The dnnops.yaml the server was started with (background retraining runs it)."""
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    ready: bool = False
    draining: bool = False
    background: set[asyncio.Task[None]] = field(default_factory=set)
    """Fire-and-forget work (shadow copies), referenced until done."""
    digests: DigestStore | None = None
    """Shared by every report this server makes, so each reads only new log frames."""
    arriving: int = 0
    """Inference requests received and not yet queued: while it is 0 a batcher has every
    request there is, and closes its batch without waiting out ``max_delay``."""
    group: WorkerGroup | None = None
    """The siblings of this worker under ``dnnops serve --workers N``; None: one process."""
    unreplayed: list[dict[str, Any]] = field(default_factory=list)
    """Sibling commands read from the group's log and not applied here yet."""

    def leads(self) -> bool:
        """Whether this process makes the server-wide decisions (rollout steps, alerts,
        retraining): always when alone, else only as the group's leader."""
        return self.group is None or self.group.leads()

    def report_digests(self) -> DigestStore:
        if self.digests is None:
            self.digests = digest_store(self.logger.logs_dir, self.slo)
        return self.digests

    async def start(self) -> None:
        """Open the logs, load, verify and warm up every target, then turn ready."""
        # Threads (runner, log writer) hand the GIL back within 1 ms instead of 5 ms, so a
        # request the event loop could answer never waits a whole switch interval.
        sys.setswitchinterval(0.001)
        self.logger.start()
        for target in self.targets:
            record = self.registry.resolve(target.model, target.ref)
            await self.load(target.endpoint, record, make_live=True)
        # Everything loaded so far (models, modules) lives as long as the process: move it out
        # of the collector's sight, so full collections under load stay short.
        gc.collect()
        gc.freeze()
        self.ready = True

    def loaded_versions(self) -> dict[tuple[str, str], LoadedVersion]:
        """Every version in memory, keyed by (model, version): monitoring reuses them
        instead of re-reading and re-verifying their artifacts."""
        return {
            (r.model, r.version): r.loaded
            for e in self.endpoints.values()
            for r in e.versions.values()
        }

    async def stop(self) -> None:
        """Not ready; drain every queue (bounded); flush and close the logs."""
        self.ready, self.draining = False, True
        if self.background:
            await asyncio.wait(list(self.background), timeout=self.serve.drain_timeout)
        runtimes = [r for e in self.endpoints.values() for r in e.versions.values()]
        await asyncio.gather(*(r.stop(self.serve.drain_timeout) for r in runtimes))
        self.logger.close()

    async def load(
        self, endpoint_name: str, record: VersionRecord, make_live: bool
    ) -> VersionRuntime:
        """Load a version (verifying every artifact) and warm it up; optionally make it live.

        The switch is one assignment after warm-up, so traffic never sees a cold model; the
        replaced version finishes its queue before it stops."""
        endpoint = self.endpoints.setdefault(endpoint_name, Endpoint(endpoint_name))
        async with endpoint.lock:
            key = str(record.version)
            runtime = endpoint.versions.get(key)
            if runtime is not None and not runtime.ready:
                runtime = None  # being retired (its batcher is closing): load it afresh
            if runtime is None:
                loaded = await asyncio.to_thread(
                    load_version, self.registry, record, self.serve.backend
                )
                # the model's session (onnxruntime's graph optimisation) is built in a
                # thread too: on the loop it held requests already queued
                runtime = await asyncio.to_thread(
                    VersionRuntime.create,
                    endpoint_name,
                    loaded,
                    self.serve,
                    metrics=self.metrics,
                    arriving=lambda: self.arriving,
                )
                await runtime.start(self.serve.warmup_batch_sizes)
                endpoint.versions[key] = runtime
                log.info("loaded %s as %s on %s", record.ref, key, endpoint_name)
            if make_live:
                previous, endpoint.live = endpoint.live, key
                if previous is not None and previous != key:
                    self.retire_later(endpoint, previous)
            return runtime

    async def load_everywhere(
        self, endpoint_name: str, record: VersionRecord, make_live: bool
    ) -> VersionRuntime:
        """``load`` here, and in every sibling worker at its next controller tick."""
        runtime = await self.load(endpoint_name, record, make_live)
        if self.group is not None:
            self.group.publish(
                {
                    "op": "load",
                    "endpoint": endpoint_name,
                    "model": record.model,
                    "version": record.version,
                    "live": make_live,
                }
            )
        return runtime

    async def follow_siblings(self) -> None:
        """Replay, in order, the loads sibling workers published. One that fails (the
        registry unreachable for a moment) stays first in line for the next call, so a
        worker never skips a change its siblings made."""
        if self.group is None:
            return
        self.unreplayed.extend(c for c in self.group.new_commands() if c.get("op") == "load")
        while self.unreplayed:
            command = self.unreplayed[0]
            record = await asyncio.to_thread(
                self.registry.resolve, command["model"], command["version"]
            )
            await self.load(command["endpoint"], record, make_live=bool(command["live"]))
            self.unreplayed.pop(0)

    async def _retire(self, endpoint: Endpoint, version: str) -> None:
        await asyncio.sleep(RETIRE_GRACE_S)  # requests that picked it before the switch get queued
        runtime = endpoint.versions.get(version)
        if runtime is None or version in _in_use(endpoint):
            return
        await runtime.stop(self.serve.drain_timeout)
        if version not in _in_use(endpoint):
            endpoint.versions.pop(version, None)

    def retire_later(self, endpoint: Endpoint, version: str) -> None:
        """Stop and unload ``version`` once it no longer takes traffic (after a grace)."""
        asyncio.get_running_loop().create_task(self._retire(endpoint, version))


def _in_use(endpoint: Endpoint) -> set[str | None]:
    return {endpoint.live, endpoint.canary, endpoint.shadow}
