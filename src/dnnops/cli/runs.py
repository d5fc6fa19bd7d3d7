"""``dnnops runs list|show``: training runs in the metadata store. Light on imports (no
torch, no pandas): listing runs must start in a fraction of a second."""

from __future__ import annotations

from typing import Annotated

import typer

from dnnops.cli.common import HomeOpt, JsonOpt, print_json
from dnnops.console import format_number, key_value_table, make_console, rows_table
from dnnops.home import Home, resolve_home
from dnnops.registry.runs import RunRecord, Runs

runs_app = typer.Typer(no_args_is_help=True, help="Training runs in the metadata store.")


def _store(home: Home) -> Runs:
    from dnnops.registry.open import open_runs

    return open_runs(home)


@runs_app.command("list")
def runs_list(
    home: HomeOpt = None,
    project: Annotated[str | None, typer.Option(help="Only this project's runs.")] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many runs.")] = 50,
    json_out: JsonOpt = False,
) -> None:
    """Runs, newest first."""
    runs = _store(resolve_home(home)).list(project, limit)
    if json_out:
        print_json([r.to_dict() for r in runs])
        return
    table = rows_table(
        "runs",
        ["id", "project", "status", "created", "test score", "weights"],
        [_run_row(r) for r in runs],
    )
    make_console().print(table)


def _run_row(run: RunRecord) -> list[object]:
    return [
        run.id,
        run.project,
        run.status,
        run.created_at[:19],
        _test_score(run.metrics),
        (run.weights_sha256 or "")[:12],
    ]


def _test_score(metrics: dict[str, object]) -> str:
    """``accuracy 0.97`` for a classifier's run, ``mae 244.2`` for a regressor's."""
    for name in ("test_accuracy", "test_mae"):
        value = metrics.get(name)
        if isinstance(value, int | float):
            return f"{name.removeprefix('test_')} {format_number(value)}"
    return ""


@runs_app.command("show")
def runs_show(run: str, home: HomeOpt = None, json_out: JsonOpt = False) -> None:
    """One run: parameters, metrics per epoch, checkpoints."""
    record = _store(resolve_home(home)).get(run)
    if json_out:
        print_json(record.to_dict())
        return
    console = make_console()
    summary = {
        "status": record.status,
        "project": record.project,
        "created": record.created_at,
        "ended": record.ended_at or "",
        **record.metrics,
        "dataset sha256": record.dataset_sha256,
        "weights sha256": record.weights_sha256 or "",
        "checkpoints": len(record.checkpoints),
    }
    console.print(key_value_table(f"run {record.id}", summary))
    if record.epochs:
        names = [k for k in record.epochs[0] if k != "epoch"]
        console.print(
            rows_table(
                "epochs",
                ["epoch", *names],
                [[int(e["epoch"]) + 1, *(e.get(n) for n in names)] for e in record.epochs],
            )
        )
