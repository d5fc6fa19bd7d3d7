"""``dnnops logs show`` and ``dnnops logs purge``: prediction and feedback records, read
(or deleted) straight from the log segments (no torch, no pandas, no database)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

import orjson
import typer

from dnnops.cli.common import HomeOpt, JsonOpt, fleet_logs, print_json
from dnnops.console import make_console, rows_table
from dnnops.durations import parse_duration
from dnnops.errors import UsageError
from dnnops.home import resolve_home
from dnnops.predlog.frames import FrameStats
from dnnops.predlog.reader import (
    FEEDBACK,
    PREDICTIONS,
    read_feedback_records,
    read_predictions,
)
from dnnops.predlog.records import FeedbackRecord, PredictionRecord
from dnnops.predlog.retention import purge_before

logs_app = typer.Typer(no_args_is_help=True, help="Prediction and feedback logs.")


@logs_app.command("show")
def logs_show(
    endpoint: Annotated[str | None, typer.Option(help="Only this endpoint.")] = None,
    id_: Annotated[str | None, typer.Option("--id", help="One prediction id.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only records newer than this (1h, 30m).")
    ] = None,
    feedback: Annotated[bool, typer.Option(help="Show the feedback log instead.")] = False,
    limit: Annotated[int, typer.Option(help="Show at most this many records (newest).")] = 50,
    jsonl: Annotated[bool, typer.Option(help="One JSON record per line.")] = False,
    home: HomeOpt = None,
) -> None:
    """Prediction records (newest last), for people or, with --jsonl, scripts."""
    folder = fleet_logs(resolve_home(home))
    cutoff = time.time() - parse_duration(since) if since else None
    stats = FrameStats()
    selected: list[PredictionRecord | FeedbackRecord] = []
    if feedback:
        selected += [
            r
            for r in read_feedback_records(folder / FEEDBACK, stats)
            if (id_ is None or id_ == r.prediction_id) and (cutoff is None or r.ts >= cutoff)
        ]
    else:
        selected += [
            r
            for r in read_predictions(folder / PREDICTIONS, stats)
            if (endpoint is None or r.endpoint == endpoint)
            and (id_ is None or id_ == r.id)
            and (cutoff is None or r.ts >= cutoff)
        ]
    shown = selected if id_ is not None else selected[-limit:]
    if jsonl:
        for record in shown:
            typer.echo(orjson.dumps(record.to_json(), option=orjson.OPT_SERIALIZE_NUMPY).decode())
        return
    columns = ["time", "id", "endpoint", "version", "status", "output", "latency ms"]
    rows = [_row(r) for r in shown]
    title = f"{len(shown)} of {len(selected)} records" + (
        " (a torn tail was skipped)" if stats.torn_tail else ""
    )
    make_console().print(rows_table(title, columns, rows))


def _row(record: PredictionRecord | FeedbackRecord) -> list[Any]:
    stamp = time.strftime("%H:%M:%S", time.localtime(record.ts))
    if isinstance(record, FeedbackRecord):
        return [stamp, record.prediction_id, "", "", "", record.label, ""]
    answer = record.output if record.answered else record.error
    latency = "" if record.latency_ms is None else record.latency_ms
    return [stamp, record.id, record.endpoint, record.version, record.status, answer, latency]


@logs_app.command("purge")
def logs_purge(
    before: Annotated[
        str,
        typer.Option(help="Delete what was written before this: a duration ago (30d) or a date."),
    ],
    dry_run: Annotated[bool, typer.Option(help="List what would go; delete nothing.")] = False,
    json_out: JsonOpt = False,
    home: HomeOpt = None,
) -> None:
    """Delete prediction and feedback segments last written before --before, with their
    digests (whole segments: the newest, still being written, are always kept)."""
    cutoff = _cutoff(before)
    purged = purge_before(resolve_home(home).logs_dir, cutoff, dry_run=dry_run)
    if json_out:
        print_json({**purged.to_dict(), "before": cutoff, "dry_run": dry_run})
        return
    verb = "would delete" if dry_run else "deleted"
    typer.echo(
        f"{verb} {len(purged.segments)} segments ({purged.bytes:,} bytes) and "
        f"{purged.digests} digest files written before "
        f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(cutoff))}"
    )


def _cutoff(before: str) -> float:
    try:
        return time.time() - parse_duration(before)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(before).timestamp()
    except ValueError:
        raise UsageError(
            f"--before {before!r}: give a duration ago (30d, 12h) or a date (2026-11-01)"
        ) from None
