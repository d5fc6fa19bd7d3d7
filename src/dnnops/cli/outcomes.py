"""``dnnops outcomes FILE``: business outcomes (prediction_id,name,value) appended to each
KPI's outcome log, as ``POST /v1/outcomes`` appends them: the report, the ``kpi``
objectives and the canary's KPI gates join them with their predictions."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path
from typing import Annotated

import orjson
import typer

from dnnops.cli.common import HomeOpt, JsonOpt
from dnnops.config import load_config
from dnnops.errors import UsageError
from dnnops.home import resolve_home
from dnnops.inference.logger import PredictionLogger
from dnnops.predlog.labels_check import made_by_of
from dnnops.predlog.reader import PREDICTIONS, read_predictions

Row = tuple[str, str, float]


def outcomes_command(
    file: Path,
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The project file: its monitor.kpis.")
    ] = Path("dnnops.yaml"),
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Append business outcomes (CSV with prediction_id,name,value) to the outcome logs.

    Each name must be one of monitor.kpis, each value a number (true/false count as 1/0);
    an outcome whose prediction is not in the log is refused and counted (exit 1)."""
    kpis = [kpi.name for kpi in load_config(config).monitor.kpis]
    rows = read_outcomes(file, kpis)
    resolved = resolve_home(home)
    made_by = made_by_of(read_predictions(resolved.logs_dir / PREDICTIONS), {r[0] for r in rows})
    accepted: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        if row[0] in made_by:
            accepted[row[1]].append(row)
    logger = PredictionLogger(resolved.logs_dir)
    try:
        for name, items in accepted.items():
            records = logger.feedback_records([(pid, value) for pid, _, value in items])
            logger.outcome_writer(name).append(records)
    finally:
        logger.close()
    taken = sum(len(items) for items in accepted.values())
    refused = len(rows) - taken
    examples = [pid for pid, _, _ in rows if pid not in made_by][:5]
    if json_out:
        answer = {
            "accepted": taken,
            "refused": {"unknown_prediction_id": refused} if refused else {},
        }
        typer.echo(orjson.dumps({**answer, "examples": examples}).decode())
    else:
        typer.echo(f"recorded {taken} outcomes from {file}")
        if refused:
            shown = ", ".join(examples)
            typer.echo(f"refused {refused}: unknown prediction id (e.g. {shown})", err=True)
    if refused:
        raise typer.Exit(1)


def read_outcomes(file: Path, kpis: list[str]) -> list[Row]:
    if not file.is_file():
        raise UsageError(f"{file} does not exist")
    with open(file, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        wanted = {"prediction_id", "name", "value"}
        if reader.fieldnames is None or not wanted <= set(reader.fieldnames):
            raise UsageError(f"{file} needs a header with the columns prediction_id,name,value")
        rows = []
        for line, row in enumerate(reader, start=2):
            name = row["name"]
            if name not in kpis:
                known = ", ".join(kpis) or "none: declare them in monitor.kpis"
                raise UsageError(f"{file}:{line}: {name!r} is not a KPI of the project ({known})")
            rows.append((row["prediction_id"], name, _value(row["value"], f"{file}:{line}")))
    return rows


def _value(text: str | None, where: str) -> float:
    cleaned = (text or "").strip().lower()
    if cleaned in ("true", "false"):
        return float(cleaned == "true")
    try:
        value = float(cleaned)
    except ValueError:
        raise UsageError(f"{where}: value {text!r} is not a number") from None
    if not math.isfinite(value):
        raise UsageError(f"{where}: value {text!r} is not a finite number")
    return value
