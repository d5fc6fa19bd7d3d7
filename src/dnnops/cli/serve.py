"""``dnnops serve``, ``dnnops feedback`` and ``dnnops logs show``."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from dnnops.cli.common import HomeOpt, JsonOpt
from dnnops.config import (
    ProjectConfig,
    load_config,
)
from dnnops.console import make_console, rows_table
from dnnops.errors import DnnopsError, UsageError
from dnnops.home import Home, resolve_home
from dnnops.inference.logger import PredictionLogger
from dnnops.registry.open import open_database_registry, open_registry
from dnnops.serve.launch import LOOPBACK, Launch, refuse_open_bind, serve


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
    grpc_port: Annotated[
        int | None,
        typer.Option(help="Also serve the Open Inference Protocol over gRPC on this port."),
    ] = None,
    home: HomeOpt = None,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure", help="Serve beyond loopback with no token set (anyone may label)."
        ),
    ] = False,
) -> None:
    """Serve registered models over HTTP (Open Inference Protocol v2 and /v1)."""
    project = load_config(config) if config is not None else None
    # the metadata store is opened only for a server beyond loopback: the only one that asks
    guarded = host not in LOOPBACK and _identities(project, home)
    refuse_open_bind(host, insecure=insecure, identities=guarded)
    count = workers or (project.serve.workers if project is not None else 1)
    launch = Launch(project, config, home, model or [], host, port, count, grpc_port=grpc_port)
    code = serve(launch)
    if code:
        raise typer.Exit(code)


def _identities(project: ProjectConfig | None, home: Path | None) -> bool:
    """Whether callers must name themselves: an identity provider or issued API keys."""
    if project is not None and project.serve.oidc.enabled:
        return True
    from dnnops.registry.api_keys import KeyStore

    resolved = resolve_home(home)
    return KeyStore(open_database_registry(resolved).engine).any()


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
    logger = PredictionLogger(resolved.logs_dir)
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
    from dnnops.predlog.labels_check import NUMBERS, LabelSpace, judge_labels, made_by_of
    from dnnops.predlog.reader import PREDICTIONS, read_predictions

    registry = open_registry(home)

    def classes_of(model: str, version: str) -> LabelSpace:
        try:
            record = registry.resolve(model, version)
        except DnnopsError:
            return None  # a version deleted since: its labels cannot be judged here
        manifest = registry.manifest(record)
        if manifest.task == "regression":
            return NUMBERS
        return manifest.classes or None

    wanted = {pid for pid, _ in labels}
    made_by = made_by_of(read_predictions(home.logs_dir / PREDICTIONS), wanted)
    return judge_labels(labels, made_by, classes_of)


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
    processes: Annotated[
        int, typer.Option(min=1, help="Client processes sharing the clients (a fast server).")
    ] = 1,
    json_out: JsonOpt = False,
) -> None:
    """Load a server: requests/s, P50/P95/P99 latency and errors, with a live progress line."""
    import asyncio
    import sys

    from dnnops.loadtest import LoadReport, run_load, run_load_processes

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
    if processes > 1:
        report = run_load_processes(
            url.rstrip("/"),
            name,
            concurrency,
            processes=processes,
            duration_s=duration,
            body=payload,
        )
    else:
        report = asyncio.run(
            run_load(
                url.rstrip("/"), name, concurrency, duration_s=duration, body=payload, on_tick=tick
            )
        )
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
    if summary["client_cpu_share"] > CLIENT_BUSY * processes:
        typer.echo(
            f"note: the client used {summary['client_cpu_share']:.0%} of a core per process: it "
            f"may have set the rate, not the server; try --processes {processes + 1}"
        )


CLIENT_BUSY = 0.9
"""A client process busier than this share of a core is the bottleneck, not the server."""


def _only_endpoint(url: str) -> str:
    import httpx

    try:
        names = httpx.get(f"{url.rstrip('/')}/v1/endpoints", timeout=10).json()["endpoints"]
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise UsageError(f"cannot list the endpoints of {url}: {exc}; pass --model NAME") from None
    if len(names) != 1:
        raise UsageError(f"{url} serves {names}; choose one with --model NAME")
    return str(names[0])
