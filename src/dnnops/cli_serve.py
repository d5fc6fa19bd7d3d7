"""``dnnops serve``, ``dnnops feedback`` and ``dnnops logs show``."""

from __future__ import annotations

import csv
import math
import os
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from dnnops.cli_common import HomeOpt, JsonOpt
from dnnops.config import (
    MonitorConfig,
    ProjectConfig,
    RetrainConfig,
    RolloutConfig,
    ServeConfig,
    SloConfig,
    load_config,
)
from dnnops.console import make_console, rows_table
from dnnops.errors import DnnopsError, UsageError
from dnnops.home import Home, resolve_home
from dnnops.registry.open import open_registry
from dnnops.registry.versions import parse_ref
from dnnops.serve.predictions import PredictionLogger
from dnnops.serve.state import ServerState, Target


def logs_dir(home: Home) -> Path:
    return home.logs_dir


def serve_command(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Project file (serve, slo).")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port).")] = 8000,
    model: Annotated[list[str] | None, typer.Option(help="NAME@REF to serve (repeatable).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Server processes sharing the port (serve.workers)."),
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Serve registered models over HTTP (Open Inference Protocol v2 and /v1)."""
    project = load_config(config) if config is not None else None
    count = workers or (project.serve.workers if project is not None else 1)
    # Fail here, once, in one line, on what the server would fail on while starting (an
    # unknown model or alias), not in a traceback from the ASGI lifespan.
    state = build_state(resolve_home(home), project, model or [])
    for target in state.targets:
        state.registry.resolve(target.model, target.ref)
    if count == 1:
        run_server(project, config, home, model or [], host, port)
        return
    state.registry.engine.dispose()
    raise typer.Exit(_supervise(state, config, home, model or [], count, host, port))


def run_server(
    project: ProjectConfig | None,
    config: Path | None,
    home: Path | None,
    refs: list[str],
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    sockets: list[Any] | None = None,
    announce: Any = None,
) -> None:
    """Build the server state and app, and serve until SIGTERM: the whole server when
    ``workers`` is 1, else one worker on the supervisor's ``sockets``."""
    import uvicorn

    from dnnops.serve.app import create_app
    from dnnops.serve.group import WorkerGroup

    state = build_state(resolve_home(home), project, refs)
    state.serve = state.serve.model_copy(update={"workers": workers})
    state.project_file = config.absolute() if config is not None else None
    state.group = WorkerGroup.from_env() if workers > 1 else None
    console = make_console()
    if announce is None:
        _say_loading(console, state.targets, "")
    app = create_app(state)
    server = _server_class()(
        state,
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,  # per-request lines cost ~3% of the CPU; the prediction log has them
            loop="uvloop",
            http="httptools",
            lifespan="on",
            timeout_graceful_shutdown=int(state.serve.drain_timeout) + 1,
        ),
    )
    server.announce = announce or (
        lambda bound: console.print(
            f"[bold]dnnops serving[/] on http://{bound} "
            f"(endpoints: {', '.join(t.endpoint for t in state.targets)})"
        )
    )
    server.run(sockets=sockets)


def _supervise(
    state: ServerState,
    config: Path | None,
    home: Path | None,
    refs: list[str],
    workers: int,
    host: str,
    port: int,
) -> int:
    from dnnops.serve.supervisor import Supervisor, WorkerFailed, WorkerSpec

    console = make_console()
    endpoints = [t.endpoint for t in state.targets]
    spec = WorkerSpec(
        config=str(config.absolute()) if config is not None else None,
        home=str(home.absolute()) if home is not None else None,
        models=refs,
        workers=workers,
        drain_timeout=state.serve.drain_timeout,
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
    console.print(
        f"[bold]dnnops serving[/] on http://{supervisor.address} "
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
    return ServerState(
        registry=open_registry(home),
        serve=serve,
        metrics=ServerMetrics(thresholds),
        logger=PredictionLogger(logs_dir(home), serve.log_inputs),
        targets=targets,
        admin_token=os.environ.get("DNNOPS_ADMIN_TOKEN") or None,
        monitor=project.monitor if project else MonitorConfig(),
        slo=project.slo if project else SloConfig(),
        rollout=project.rollout if project else RolloutConfig(),
        retrain=project.retrain if project else RetrainConfig(),
    )


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
            self.state.ready = False
            super().handle_exit(sig, frame)
            if sig == signal.SIGTERM:
                # uvicorn re-raises the signal after its graceful shutdown, so the process
                # would end "killed by SIGTERM"; a drained, flushed server exits 0 instead.
                self._captured_signals = [s for s in self._captured_signals if s != signal.SIGTERM]

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.announce is not None and self.servers:
                address = self.servers[0].sockets[0].getsockname()
                self.announce(f"{address[0]}:{address[1]}")

    return Server


def feedback_command(
    file: Path,
    check: Annotated[
        bool,
        typer.Option(help="Refuse labels whose prediction is not in the log or not a class."),
    ] = True,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Append ground-truth labels (CSV with prediction_id,label) to the feedback log.

    Each label needs its prediction in the log and must be one of the classes of the
    version that made it; the others are refused and counted (exit 1 when any is)."""
    resolved = resolve_home(home)
    labels = _read_labels(file)
    verdicts = _judged(labels, resolved) if check else None
    accepted = verdicts.accepted if verdicts is not None else labels
    logger = PredictionLogger(logs_dir(resolved))
    logger.feedback.start()
    logger.feedback.append(logger.feedback_records(accepted))
    logger.feedback.close()
    refused = dict(verdicts.refused) if verdicts is not None else {}
    if json_out:
        examples = verdicts.examples if verdicts is not None else {}
        typer.echo(
            orjson.dumps(
                {"accepted": len(accepted), "refused": refused, "examples": examples}
            ).decode()
        )
    else:
        typer.echo(f"recorded {len(accepted)} labels from {file}")
        for reason, count in refused.items():
            shown = ", ".join(verdicts.examples[reason]) if verdicts is not None else ""
            typer.echo(f"refused {count}: {reason.replace('_', ' ')} (e.g. {shown})", err=True)
    if refused:
        raise typer.Exit(1)


def _judged(labels: list[tuple[str, Any]], home: Home) -> Any:
    from dnnops.predlog.labels_check import judge_labels
    from dnnops.predlog.reader import PREDICTIONS, read_records

    registry = open_registry(home)

    def classes_of(model: str, version: str) -> list[Any] | None:
        try:
            record = registry.resolve(model, version)
        except DnnopsError:
            return None  # a version deleted since: its labels cannot be judged here
        return list(registry.manifest(record).get("classes") or []) or None

    records = read_records(home.logs_dir / PREDICTIONS, PREDICTIONS)
    return judge_labels(labels, records, classes_of)


def _read_labels(file: Path) -> list[tuple[str, Any]]:
    if not file.is_file():
        raise UsageError(f"{file} does not exist")
    with open(file, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"prediction_id", "label"} <= set(reader.fieldnames):
            raise UsageError(f"{file} needs a header with the columns prediction_id,label")
        labels: list[tuple[str, Any]] = []
        for line, row in enumerate(reader, start=2):
            if not row["prediction_id"] or row["label"] in (None, ""):
                raise UsageError(f"{file}:{line}: empty prediction_id or label")
            labels.append((row["prediction_id"], _label_value(row["label"])))
    return labels


def _label_value(text: str) -> Any:
    """A class id (``7``), a number (``441.66``, regression) or a class name, as written."""
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def loadtest_command(
    url: str,
    model: Annotated[
        str | None, typer.Option(help="Endpoint to call (default: the only one).")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Concurrent closed-loop clients.")] = 8,
    duration: Annotated[float, typer.Option(min=0.1, help="Seconds to run.")] = 10.0,
    body: Annotated[
        Path | None, typer.Option(help="A v2 request body to send (default: generated).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Load a server: requests/s, P50/P95/P99 latency and errors, with a live progress line."""
    import asyncio
    import sys

    from dnnops.loadtest import LoadReport, run_load

    name = model or _only_endpoint(url)
    live = sys.stderr.isatty() and not json_out

    def tick(report: LoadReport) -> None:
        if live:
            s = report.summary()
            sys.stderr.write(
                f"\r{s['seconds']:5.1f}s  {s['requests']} requests  "
                f"{s['requests_per_s']:.0f}/s  p99 {s['p99_ms']:.1f} ms  "
                f"errors {sum(s['errors'].values())}"
            )
            sys.stderr.flush()

    payload = body.read_bytes() if body is not None else None
    report = asyncio.run(run_load(url.rstrip("/"), name, concurrency, duration, payload, tick))
    if live:
        sys.stderr.write("\n")
    summary = report.summary()
    if json_out:
        typer.echo(orjson.dumps(summary).decode())
        return
    rows = [
        [
            summary["requests"],
            summary["requests_per_s"],
            summary["p50_ms"],
            summary["p95_ms"],
            summary["p99_ms"],
            sum(summary["errors"].values()),
        ]
    ]
    title = f"loadtest {url} model {name}: {concurrency} clients, {summary['seconds']} s"
    make_console().print(
        rows_table(title, ["requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors"], rows)
    )
    if summary["errors"]:
        typer.echo(f"errors by status: {summary['errors']}")


def _only_endpoint(url: str) -> str:
    import httpx

    try:
        names = httpx.get(f"{url.rstrip('/')}/v1/endpoints", timeout=10).json()["endpoints"]
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise UsageError(f"cannot list the endpoints of {url}: {exc}; pass --model NAME") from None
    if len(names) != 1:
        raise UsageError(f"{url} serves {names}; choose one with --model NAME")
    return str(names[0])


class BackgroundServer:
    """A dnnops server on a free loopback port in a thread of this process (quickstart)."""

    def __init__(self, state: ServerState) -> None:
        import threading

        import uvicorn

        from dnnops.serve.app import create_app

        self.state = state
        config = uvicorn.Config(
            create_app(state),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            access_log=False,  # per-request lines cost ~3% of the CPU; the prediction log has them
            loop="uvloop",
            http="httptools",
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="dnnops-server", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not (self.server.started and self.state.ready):
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise UsageError("the server did not start; see the messages above")
            time.sleep(0.05)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)
