"""Everything one server process holds: endpoints, metrics, logs, readiness."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dnnops.config import (
    LogsConfig,
    MonitorConfig,
    RetrainConfig,
    RolloutConfig,
    ServeConfig,
    SloConfig,
)
from dnnops.errors import DnnopsError
from dnnops.inference.logger import PredictionLogger
from dnnops.monitor.explanations import VersionExplainers
from dnnops.monitor.judgements.report_types import Report
from dnnops.monitor.report import build_report, digest_store, predictions_made
from dnnops.monitor.segments.digest_store import DigestStore
from dnnops.predlog.fleet_log import FleetLog
from dnnops.predlog.labels_check import NUMBERS, LabelSpace
from dnnops.predlog.reader import FEEDBACK, read_labels
from dnnops.registry.api_keys import KeyStore
from dnnops.registry.leases import FleetCommands
from dnnops.registry.loader import LoadedVersion, load_version
from dnnops.registry.versions import ModelRegistry, VersionRecord
from dnnops.serve.feedback import LabelGate
from dnnops.serve.fleet import FleetLeadership
from dnnops.serve.group import WorkerGroup
from dnnops.serve.identities import KeyAuth
from dnnops.serve.metrics import ServerMetrics
from dnnops.serve.oidc import OidcVerifier
from dnnops.serve.report_worker import ReportWorker
from dnnops.serve.runtime import Endpoint, VersionRuntime
from dnnops.serve.tracing import tracing_enabled

log = logging.getLogger("dnnops.serve")
RETIRE_GRACE_S = 1.0


@dataclass(frozen=True)
class Target:
    """What to serve: endpoint ``name`` answers with ``model@ref``."""

    endpoint: str
    model: str
    ref: str


@dataclass(frozen=True)
class AccessTokens:
    """Who may do what (``DNNOPS_*_TOKEN``); admin may do everything."""

    admin: str | None = None
    labels: str | None = None
    """``DNNOPS_LABELS_TOKEN``: may send ``/v1/feedback``."""
    read: str | None = None
    """``DNNOPS_READ_TOKEN``: may read the tracer, the dashboard data and the monitor."""

    @property
    def secured(self) -> bool:
        """Whether any token is set: then labels and reads need one too."""
        return any((self.admin, self.labels, self.read))


@dataclass(frozen=True)
class Policies:
    """What the project says the server should do; fixed while it runs."""

    serve: ServeConfig = field(default_factory=ServeConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    slo: SloConfig = field(default_factory=SloConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    retrain: RetrainConfig = field(default_factory=RetrainConfig)
    logs: LogsConfig = field(default_factory=LogsConfig)
    project_file: Path | None = None
    """The dnnops.yaml the server was started with (background retraining runs it)."""


@dataclass
class Lifecycle:
    """Where the process stands: starting, serving, draining; and the work in flight."""

    ready: bool = False
    draining: bool = False
    arriving: int = 0
    """Inference requests received and not yet queued: while it is 0 a batcher has every
    request there is, and closes its batch without waiting out ``max_delay``."""
    background: set[asyncio.Task[None]] = field(default_factory=set)
    """Fire-and-forget work (shadow copies), referenced until done."""


@dataclass
class ServerState:
    """One server process: what it serves (``endpoints``), with what (``registry``,
    ``logger``, ``metrics``), under which rules (``policies``, ``access``), where it stands
    (``lifecycle``) and with whom (``group``)."""

    registry: ModelRegistry
    metrics: ServerMetrics
    logger: PredictionLogger
    targets: list[Target]
    policies: Policies = field(default_factory=Policies)
    access: AccessTokens = field(default_factory=AccessTokens)
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    digests: DigestStore | None = None
    """Shared by every report this server makes, so each reads only new log frames."""
    group: WorkerGroup | None = None
    """The siblings of this worker under ``dnnops serve --workers N``; None: one process."""
    fleet: FleetLeadership | None = None
    """The other replicas sharing this metadata database (PostgreSQL); None: this host."""
    fleet_commands: FleetCommands | None = None
    """Their admin changes, as ``group`` holds this host's workers'."""
    fleet_log: FleetLog | None = None
    """Where the replicas' log segments meet (``DNNOPS_LOGS_URL`` on an object store)."""
    bind_host: str = "127.0.0.1"
    """The address HTTP listens on: gRPC (``serve.grpc_port``) listens there too."""
    replica: str = ""
    """This replica's name in the fleet's log (empty outside a fleet)."""
    report_worker: ReportWorker | None = None
    """The child process the monitoring loop's reports are built in."""
    explain_worker: ReportWorker | None = None
    """The side process explanations run in (its own: a report never delays one)."""
    explainers: VersionExplainers | None = None
    """Explainers in this process, when there is no side process (in-process servers)."""
    labels: LabelGate | None = None
    keys: KeyAuth | None = None
    uploads_dir: Path = Path(".dnnops/uploads")
    """Where artifacts uploaded in chunks wait until complete (``<home>/uploads``)."""
    """Named API keys (``dnnops keys``), looked up in the metadata store (made on first use)."""
    oidc_verifier: OidcVerifier | None = None
    """``serve.oidc``'s token checker and the issuer's keys it holds (made on first use)."""
    traced: bool = field(default_factory=tracing_enabled)
    """Whether an OpenTelemetry SDK tracer provider was installed before this server was
    built (``opentelemetry-instrument`` installs it at start): asked once, since asking
    costs 0.8 us, about 1% of a small request."""

    def oidc(self) -> OidcVerifier | None:
        """The identity provider's token checker, when ``serve.oidc`` names an issuer."""
        if self.oidc_verifier is None and self.serve.oidc.enabled:
            self.oidc_verifier = OidcVerifier(self.serve.oidc)
        return self.oidc_verifier

    def key_auth(self) -> KeyAuth:
        if self.keys is None:
            self.keys = KeyAuth(KeyStore(self.registry.engine))
        return self.keys

    def label_gate(self) -> LabelGate:
        """What ``/v1/feedback`` accepts (made on first use)."""
        if self.labels is None:
            self.labels = LabelGate(self._made_by, self._classes_of, self._known_labels)
        return self.labels

    def _made_by(self, wanted: set[str]) -> Mapping[str, tuple[str, str]]:
        return predictions_made(
            self.registry,
            self.logger.logs_dir,
            wanted,
            since=time.time() - self.policies.slo.window,
            slo=self.policies.slo,
            loaded=self.loaded_versions(),
            store=self.report_digests(),
        )

    def _classes_of(self, model: str, version: str) -> LabelSpace:
        loaded = self.loaded_versions().get((model, version))
        if loaded is None:
            try:
                loaded = load_version(self.registry, self.registry.resolve(model, version))
            except DnnopsError:
                return None  # deleted since: its labels cannot be judged here
        return NUMBERS if loaded.is_regression else list(loaded.classes) or None

    def _known_labels(self) -> Mapping[str, Any]:
        since = time.time() - self.policies.slo.window
        return read_labels(self.logger.logs_dir / FEEDBACK, since=since)

    @property
    def serve(self) -> ServeConfig:
        """``policies.serve``: read on every request, so named once here."""
        return self.policies.serve

    def leads(self) -> bool:
        """Whether this process makes the server-wide decisions (rollout steps, alerts,
        retraining): always when alone, else only as the group's leader, and in a fleet
        only while holding the fleet's lease."""
        return self.leads_here() and (self.fleet is None or self.fleet.leads())

    def leads_here(self) -> bool:
        """The leader among this replica's workers (the one that contends for the fleet)."""
        return self.group is None or self.group.leads()

    def report_digests(self) -> DigestStore:
        if self.digests is None:
            self.digests = digest_store(self.logger.logs_dir, self.policies.slo)
        return self.digests

    async def report(self, window_s: float) -> Report:
        """The monitoring report over ``window_s``: in the report child when there is one
        (a report holds the GIL for hundreds of ms), else on a worker thread."""
        policies = self.policies
        if self.report_worker is not None:
            return await self.report_worker.build(
                window_s, monitor=policies.monitor, slo=policies.slo
            )
        return await asyncio.to_thread(
            build_report,
            self.registry,
            self.logger.logs_dir,
            window_s,
            monitor=policies.monitor,
            slo=policies.slo,
            loaded=self.loaded_versions(),
            store=self.report_digests(),
        )

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
        self.lifecycle.ready = True

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
        self.lifecycle.ready, self.lifecycle.draining = False, True
        if self.lifecycle.background:
            background = list(self.lifecycle.background)
            await asyncio.wait(background, timeout=self.serve.drain_timeout)
        runtimes = [r for e in self.endpoints.values() for r in e.versions.values()]
        await asyncio.gather(*(r.stop(self.serve.drain_timeout) for r in runtimes))
        self.logger.close()
        for worker in (self.report_worker, self.explain_worker):
            if worker is not None:
                worker.close()
        if self.fleet_log is not None:  # every worker: what it logged last leaves with it
            try:
                await asyncio.to_thread(self.fleet_log.ship)
            except Exception as exc:  # the store is away: the next start ships it
                log.warning("fleet log: could not ship on drain (%s); the next start will", exc)

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
                    arriving=lambda: self.lifecycle.arriving,
                    redaction=self.logger.redaction(
                        loaded.schema.sensitive_names, self.serve.log.redact
                    ),
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
        """``load`` here, and in every sibling worker (and, in a fleet, every replica's
        workers) at its next controller tick."""
        runtime = await self.load(endpoint_name, record, make_live)
        command = {
            "op": "load",
            "endpoint": endpoint_name,
            "model": record.model,
            "version": record.version,
            "live": make_live,
        }
        if self.fleet_commands is not None:  # every worker of every replica reads it
            await asyncio.to_thread(self.fleet_commands.publish, command)
        elif self.group is not None:
            self.group.publish(command)
        return runtime

    async def follow_siblings(self) -> None:
        """Replay, in order, the loads sibling workers published. One that fails (the
        registry unreachable for a moment) stays first in line for the next call, so a
        worker never skips a change its siblings made."""
        source: FleetCommands | WorkerGroup | None = self.fleet_commands or self.group
        if source is None:
            return
        news = await asyncio.to_thread(source.new_commands)
        source.unreplayed.extend(c for c in news if c.get("op") == "load")
        while source.unreplayed:
            command = source.unreplayed[0]
            record = await asyncio.to_thread(
                self.registry.resolve, command["model"], command["version"]
            )
            await self.load(command["endpoint"], record, make_live=bool(command["live"]))
            source.unreplayed.pop(0)

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
