"""``dnnops retrain``: run the retraining pipeline when a trigger fired (or ``--force``);
``dnnops retrain status``: the background retrainings a server ran, newest first."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from dnnops.cli.common import HomeOpt, JsonOpt, QuietOpt, print_json
from dnnops.config import ProjectConfig, load_config
from dnnops.console import key_value_table, make_console, progress_sink
from dnnops.errors import DnnopsError
from dnnops.home import Home, resolve_home
from dnnops.registry.versions import VersionRecord
from dnnops.retrain.pipeline import RetrainOutcome, Vet, retrain

retrain_app = typer.Typer(
    invoke_without_command=True,
    add_completion=False,
    help="Retrain when a trigger fired; `status` lists the server's background runs.",
)


@retrain_app.callback()
def retrain_command(
    ctx: typer.Context,
    config: Annotated[Path, typer.Option("--config", "-c", help="The project file.")] = Path(
        "dnnops.yaml"
    ),
    force: Annotated[bool, typer.Option(help="Retrain even if no trigger fired.")] = False,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Check the triggers; retrain, judge the challenger on the newest labels, start a canary."""
    if ctx.invoked_subcommand is not None:
        return
    project = load_config(config)
    progress = progress_sink(quiet or json_out)
    try:
        resolved = resolve_home(home)
        outcome = retrain(
            project, resolved, force=force, progress=progress, vet=replayer(project, resolved)
        )
    finally:
        if progress is not None:
            progress.close()
    if json_out:
        print_json(outcome.to_dict())
        return
    print_outcome(outcome)


def replayer(project: ProjectConfig, home: Home) -> Vet:
    """The challenger replayed on the last day of logged production inputs against the
    champion, as ``dnnops replay`` does; a replay that cannot run says why."""
    from dnnops.batch.replay import ReplayRequest, replay
    from dnnops.registry.open import open_registry

    def vet(challenger: VersionRecord) -> dict[str, Any]:
        request = ReplayRequest(
            project.name,
            str(challenger.version),
            policy=project.rollout,
            serve=project.serve,
            kpis=project.monitor.kpis,
            group=project.data.group,
        )
        try:
            report = replay(open_registry(home), home, request)
        except DnnopsError as exc:
            return {"passed": None, "message": f"no replay: {exc}"}
        return {"passed": report.passed, "message": report.message, "rows": report.rows}

    return vet


def print_outcome(outcome: RetrainOutcome) -> None:
    observed = outcome.observed.to_dict() if outcome.observed else {}
    rows: dict[str, object] = {
        **{k.replace("_", " "): v for k, v in observed.items()},
        "triggers": "; ".join(outcome.decision.fired) or "none",
        "champion": outcome.champion,
        "challenger": outcome.challenger,
        "started from": outcome.started_from if outcome.challenger is not None else "-",
        **{f"rows {k}": v for k, v in outcome.rows.items()},
        **{f"accuracy {k}": v for k, v in outcome.accuracy.items()},
        "replay": outcome.replay["message"] if outcome.replay else "-",
        "outcome": outcome.outcome,
    }
    make_console().print(key_value_table("retraining", rows))


@retrain_app.command("status")
def retrain_status(
    name: Annotated[str | None, typer.Argument(help="Only this model's runs.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many runs.")] = 20,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The background retrainings a server ran (``retrain.background``), newest first:
    outcome, exit code, duration, what happened and where its log is."""
    from dnnops.monitor.retrain_runs import RETRAIN_RUN
    from dnnops.registry.open import open_registry

    registry = open_registry(resolve_home(home))
    entries = [e for e in registry.audit_log(name, limit=1000) if e["action"] == RETRAIN_RUN]
    runs = [e["details"] | {"at": e["at"]} for e in entries[:limit]]
    if json_out:
        print_json(runs)
        return
    if not runs:
        make_console().print("no background retraining has run (retrain.background: true)")
        return
    table = Table(title="background retrainings, newest first")
    for column in ("at", "model", "outcome", "exit", "seconds", "what happened", "log"):
        table.add_column(column)
    for run in runs:
        table.add_row(
            str(run["at"]), str(run["model"]), str(run["outcome"]), str(run["exit_code"]),
            f"{run['duration_s']:.0f}", str(run["summary"]), str(run["log"]),
        )  # fmt: skip
    make_console().print(table)
