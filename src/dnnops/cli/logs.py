"""``dnnops logs show``: prediction and feedback records, read straight from the log
segments (no torch, no pandas, no database)."""

from __future__ import annotations

import time
from typing import Annotated

import orjson
import typer

from dnnops.cli.common import HomeOpt
from dnnops.console import make_console, rows_table
from dnnops.durations import parse_duration
from dnnops.home import resolve_home
from dnnops.predlog.frames import FrameStats
from dnnops.predlog.reader import FEEDBACK, PREDICTIONS, read_records

logs_app = typer.Typer(no_args_is_help=True, help="Prediction and feedback logs.")


@logs_app.command("show")
def logs_show(
    endpoint: Annotated[str | None, typer.Option(help="Only this endpoint.")] = None,
    id_: Annotated[str | None, typer.Option("--id", help="One prediction id.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only records newer than this (1h, 30m).")
    ] = None,
    feedback: Annotated[bool, typer.Option(help="Show the feedback log instead.")] = False,
    limit: int = 50,
    jsonl: Annotated[bool, typer.Option(help="One JSON record per line.")] = False,
    home: HomeOpt = None,
) -> None:
    """Prediction records (newest last), for people or, with --jsonl, scripts."""
    folder = resolve_home(home).logs_dir
    prefix = FEEDBACK if feedback else PREDICTIONS
    cutoff = time.time() - parse_duration(since) if since else None
    stats = FrameStats()
    selected = [
        r
        for r in read_records(folder / prefix, prefix, stats)
        if (endpoint is None or r.get("endpoint") == endpoint)
        and (id_ is None or id_ in (r.get("id"), r.get("prediction_id")))
        and (cutoff is None or r.get("ts", 0) >= cutoff)
    ]
    shown = selected if id_ is not None else selected[-limit:]
    if jsonl:
        for record in shown:
            typer.echo(orjson.dumps(record).decode())
        return
    columns = ["time", "id", "endpoint", "version", "status", "output", "latency ms"]
    rows = [
        [
            time.strftime("%H:%M:%S", time.localtime(r.get("ts", 0))),
            r.get("id") or r.get("prediction_id"),
            r.get("endpoint", ""),
            r.get("version", ""),
            r.get("status", ""),
            r.get("output", r.get("label", r.get("error", ""))),
            r.get("latency_ms", ""),
        ]
        for r in shown
    ]
    title = f"{len(shown)} of {len(selected)} records" + (
        " (a torn tail was skipped)" if stats.torn_tail else ""
    )
    make_console().print(rows_table(title, columns, rows))
