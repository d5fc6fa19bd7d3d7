"""Build and run the server: its state from the project and the registry, the uvicorn
server with dnnops's SIGTERM behaviour, the multi-worker supervisor, and a server in a
background thread (the quickstart and tests). The CLI's ``dnnops serve`` only parses its
options and calls ``serve``; the server's environment variables are read here.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dnnops.config import MonitorConfig, ProjectConfig, ServeConfig, TlsConfig
from dnnops.console import make_console
from dnnops.errors import UsageError
from dnnops.gpu import onnx_providers, torch_device
from dnnops.home import Home, resolve_home
from dnnops.inference.logger import PredictionLogger
from dnnops.monitor.judgements.slo import unreachable_rules
from dnnops.predlog.fleet_log import FleetLog
from dnnops.registry.leases import FleetCommands, Lease
from dnnops.registry.open import open_database_registry
from dnnops.registry.versions import parse_ref
from dnnops.serve.config_audit import audit_config_change
from dnnops.serve.fleet import LEASE_NAME, FleetLeadership, holder_name
from dnnops.serve.report_worker import ReportWorker
from dnnops.serve.state import AccessTokens, Policies, ServerState, Target

if TYPE_CHECKING:  # uvicorn is imported when a server starts, not with the CLI
    import uvicorn

    from dnnops.serve.read_limits import ReadLimits

log = logging.getLogger("dnnops.serve")
ADMIN_TOKEN_ENV = "DNNOPS_ADMIN_TOKEN"
LABELS_TOKEN_ENV = "DNNOPS_LABELS_TOKEN"
READ_TOKEN_ENV = "DNNOPS_READ_TOKEN"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def refuse_open_bind(host: str, *, insecure: bool, identities: bool = False) -> None:
    """Binding beyond loopback with no token would let anyone send labels that steer the
    canary gates and retraining, and read logged inputs: refused unless ``--insecure``.
    ``identities``: API keys were issued or an identity provider is set, and every route
    asks for them."""
    tokens = (os.environ.get(n) for n in (ADMIN_TOKEN_ENV, LABELS_TOKEN_ENV, READ_TOKEN_ENV))
    if host not in LOOPBACK and not any(tokens) and not identities and not insecure:
        raise UsageError(
            f"serving on {host} with no token set lets anyone send labels and read logged "
            f"inputs; set {LABELS_TOKEN_ENV} and {READ_TOKEN_ENV} (or {ADMIN_TOKEN_ENV}), issue "
            "keys (dnnops keys create), set serve.oidc, or pass --insecure"
        )


@dataclass(frozen=True)
class Launch:
    """What to serve and where: ``dnnops serve``'s options, or a worker's spec."""

    project: ProjectConfig | None
    config: Path | None
    """The project file ``project`` was read from (background retraining runs it)."""
    home: Path | None
    refs: list[str]
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    grpc_port: int | None = None
    """``--grpc-port``: overrides ``serve.grpc_port``."""


def tls_files(tls: TlsConfig, config: Path | None) -> tuple[str, str] | None:
    """The certificate and key files to serve HTTPS with (relative to the project file's
    folder), checked to be readable PEM, so a wrong path fails in one line at start."""
    if tls.certfile is None or tls.keyfile is None:
        return None
    folder = config.parent if config is not None else Path.cwd()
    found = []
    for key, path in (("certfile", tls.certfile), ("keyfile", tls.keyfile)):
        full = path if path.is_absolute() else folder / path
        try:
            head = full.read_bytes()[:4096]
        except OSError as exc:
            raise UsageError(f"serve.tls.{key}: cannot read {full} ({exc.strerror})") from None
        if b"-----BEGIN" not in head:
            raise UsageError(f"serve.tls.{key}: {full} is not a PEM file")
        found.append(str(full))
    return found[0], found[1]


def serve(launch: Launch) -> int:
    """Serve until SIGTERM, in this process or in ``launch.workers`` supervised ones; the
    exit code. Fails first, in one line, on what the server would fail on while starting
    (an unknown model or alias, unreadable TLS files, a device that is not there), not in
    a traceback from the ASGI lifespan."""
    state = build_state(resolve_home(launch.home), launch.project, launch.refs)
    tls_files(state.serve.tls, launch.config)
    for target in state.targets:
        state.registry.resolve(target.model, target.ref)
    check_serving_device(state.serve)
    audit_config_change(state.registry, launch.project)
    if launch.workers == 1:
        run_server(launch)
        return 0
    state.registry.engine.dispose()
    return _supervise(state, launch)


def served_runbooks(
    monitor: MonitorConfig, serve: ServeConfig, *, host: str, port: int
) -> MonitorConfig:
    """The alerts of a server link the runbooks it serves, by an absolute address
    (``serve.public_url``, else this host's name and port), unless the project chose
    ``monitor.runbook_url``."""
    if "runbook_url" in monitor.model_fields_set:
        return monitor
    reached = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    base = (serve.public_url or f"http://{reached}:{port}").rstrip("/")
    return monitor.model_copy(update={"runbook_url": f"{base}/runbooks/{{page}}"})


def check_serving_device(serve: ServeConfig) -> None:
    """``serve.device`` is there for ``serve.backend`` (torch is imported only to ask)."""
    if serve.device == "cpu":
        return
    if serve.backend == "torch":
        torch_device(serve.device, field="serve.device")
    else:
        onnx_providers(serve.device)


def run_server(launch: Launch, sockets: list[Any] | None = None, announce: Any = None) -> None:
    """Build the server state and app, and serve until SIGTERM: the whole server when
    ``launch.workers`` is 1, else one worker on the supervisor's ``sockets``."""
    from dnnops.serve.app import create_app
    from dnnops.serve.group import WorkerGroup

    config, workers, host, port = launch.config, launch.workers, launch.host, launch.port
    state = build_state(resolve_home(launch.home), launch.project, launch.refs)
    grpc_port = launch.grpc_port or state.serve.grpc_port
    state.bind_host = host
    state.policies = replace(
        state.policies,
        serve=state.serve.model_copy(update={"workers": workers, "grpc_port": grpc_port}),
        project_file=config.absolute() if config is not None else None,
    )
    state.group = WorkerGroup.from_env() if workers > 1 else None
    console = make_console()
    if announce is None:
        _say_loading(console, state.targets, "")
    app = create_app(state)
    tls = tls_files(state.serve.tls, config)
    scheme = "https" if tls else "http"
    server = _server_class()(
        state,
        uvicorn_config(
            app,
            host,
            port,
            timeout_graceful_shutdown=int(state.serve.drain_timeout) + 1,
            limits=read_limits(state.serve),
            ssl_certfile=tls[0] if tls else None,
            ssl_keyfile=tls[1] if tls else None,
        ),
    )
    server.announce = announce or (
        lambda bound: console.print(
            f"[bold]dnnops serving[/] on {scheme}://{bound} "
            f"(endpoints: {', '.join(t.endpoint for t in state.targets)})"
        )
    )
    server.run(sockets=sockets)


def _supervise(state: ServerState, launch: Launch) -> int:
    from dnnops.serve.supervisor import Supervisor, WorkerFailed, WorkerSpec

    config, home, workers, host, port = (
        launch.config, launch.home, launch.workers, launch.host, launch.port
    )  # fmt: skip
    console = make_console()
    endpoints = [t.endpoint for t in state.targets]
    spec = WorkerSpec(
        config=str(config.absolute()) if config is not None else None,
        home=str(home.absolute()) if home is not None else None,
        models=launch.refs,
        workers=workers,
        drain_timeout=state.serve.drain_timeout,
        host=host,
        grpc_port=launch.grpc_port,
    )
    try:
        supervisor = Supervisor(spec, host, port)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    _say_loading(console, state.targets, f" in {workers} workers")
    try:
        supervisor.start()
    except WorkerFailed as exc:
        stopped_by_signal = supervisor.stopping
        supervisor.stop()
        if stopped_by_signal:
            return 0
        raise UsageError(f"{exc}; its error is printed above") from None
    scheme = "https" if state.serve.tls.enabled else "http"
    console.print(
        f"[bold]dnnops serving[/] on {scheme}://{supervisor.address} "
        f"(endpoints: {', '.join(endpoints)}; {workers} workers)"
    )
    return supervisor.wait()


def _say_loading(console: Any, targets: list[Target], where: str) -> None:
    for target in targets:
        console.print(
            f"loading {target.model}@{target.ref} as endpoint {target.endpoint}{where} "
            "(verify, warm up)"
        )


def build_state(home: Home, project: ProjectConfig | None, refs: list[str]) -> ServerState:
    from dnnops.serve.metrics import ServerMetrics

    serve = project.serve if project is not None else ServeConfig()
    if not refs:
        if project is None:
            raise UsageError(
                "name what to serve: --model NAME@REF, or -c dnnops.yaml to serve NAME@production"
            )
        refs = [f"{project.name}@production"]
    targets = []
    for text in refs:
        name, ref = parse_ref(text)
        targets.append(Target(endpoint=name, model=name, ref=ref))
    thresholds = [o.threshold for o in project.slo.objectives if o.threshold] if project else []
    policies = Policies(serve=serve)
    if project is not None:
        policies = Policies(
            serve, project.monitor, project.slo, project.rollout, project.retrain, project.logs
        )
        for problem in unreachable_rules(project.slo):
            log.warning("slo: %s", problem)
    metrics = ServerMetrics(thresholds)
    metrics.watch_gpus = serve.device != "cpu"
    state = ServerState(
        registry=open_database_registry(home),
        metrics=metrics,
        logger=PredictionLogger(home.logs_dir, serve.log_inputs),
        targets=targets,
        policies=policies,
        access=AccessTokens(
            admin=os.environ.get(ADMIN_TOKEN_ENV) or None,
            labels=os.environ.get(LABELS_TOKEN_ENV) or None,
            read=os.environ.get(READ_TOKEN_ENV) or None,
        ),
    )
    state.uploads_dir = home.root / "uploads"
    engine = state.registry.engine
    if engine.dialect.name == "postgresql":  # a shared database: replicas may be elsewhere
        holder = holder_name()
        lease = Lease(engine, LEASE_NAME, holder, ttl_s=serve.lease)
        state.fleet = FleetLeadership(lease, contends=state.leads_here)
        state.fleet_commands = FleetCommands(engine, holder)
    if policies.monitor.evaluate_every:
        state.report_worker = ReportWorker(home)
    state.explain_worker = ReportWorker(home)  # started on the first explanation
    if home.fleet_logs_url is not None:
        retention = project.logs.retention if project is not None else None
        state.fleet_log = FleetLog(
            home.fleet_logs_url, home.logs_dir, home.replica, retention_s=retention
        )
        state.replica = state.fleet_log.replica
    return state


def _server_class() -> Any:
    """uvicorn.Server with dnnops's SIGTERM behaviour (defined here so uvicorn is imported
    only by ``dnnops serve``)."""
    import uvicorn

    class Server(uvicorn.Server):
        """Turns readiness off the moment SIGTERM arrives, then lets uvicorn drain."""

        def __init__(self, state: ServerState, config: uvicorn.Config) -> None:
            super().__init__(config)
            self.state = state
            self.announce: Any = None

        def handle_exit(self, sig: int, frame: Any) -> None:
            self.state.lifecycle.ready = False
            super().handle_exit(sig, frame)
            if sig == signal.SIGTERM:
                # uvicorn re-raises the signal after its graceful shutdown, so the process
                # would end "killed by SIGTERM"; a drained, flushed server exits 0 instead.
                self._captured_signals = [s for s in self._captured_signals if s != signal.SIGTERM]

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.servers:  # bound: the alerts' runbook links name the real port
                address = self.servers[0].sockets[0].getsockname()
                policies = self.state.policies
                monitor = served_runbooks(
                    policies.monitor, policies.serve, host=address[0], port=address[1]
                )
                self.state.policies = replace(policies, monitor=monitor)
                if self.announce is not None:
                    self.announce(f"{address[0]}:{address[1]}")

    return Server


def read_limits(serve: ServeConfig) -> ReadLimits:
    from dnnops.serve.read_limits import ReadLimits

    return ReadLimits(serve.max_header_bytes, serve.header_timeout, serve.body_timeout)


def uvicorn_config(
    app: Any, host: str, port: int, *, limits: ReadLimits | None = None, **options: Any
) -> uvicorn.Config:
    """How every dnnops server runs under uvicorn: uvloop and httptools (bounded by
    ``limits``, the defaults' by default), no access log (per-request lines cost ~3% of the
    CPU; the prediction log has them), the lifespan on; ``options`` adds what differs
    (TLS, the drain time)."""
    import uvicorn

    from dnnops.serve.read_limits import guarded_protocol

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http=guarded_protocol(limits or read_limits(ServeConfig())),
        lifespan="on",
        **options,
    )


class BackgroundServer:
    """A dnnops server on a free loopback port in a thread of this process (quickstart)."""

    def __init__(self, state: ServerState) -> None:
        import threading

        import uvicorn

        from dnnops.serve.app import create_app

        self.state = state
        self.server = uvicorn.Server(uvicorn_config(create_app(state), "127.0.0.1", 0))
        self.thread = threading.Thread(target=self.server.run, name="dnnops-server", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not (self.server.started and self.state.lifecycle.ready):
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise UsageError("the server did not start; see the messages above")
            time.sleep(0.05)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)
