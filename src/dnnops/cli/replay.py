"""``dnnops replay NAME@CANDIDATE``: a candidate run offline on the production inputs of a
window, against the champion, before it takes traffic (``batch/replay.py``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from dnnops.cli.common import HomeOpt, JsonOpt, fleet_logs, print_json
from dnnops.config import ProjectConfig, load_config
from dnnops.console import make_console, rows_table
from dnnops.durations import parse_duration
from dnnops.errors import UsageError
from dnnops.home import resolve_home
from dnnops.registry.open import open_registry
from dnnops.registry.versions import parse_ref


def replay_command(
    ref: Annotated[str, typer.Argument(help="The candidate, NAME@VERSION.")],
    since: Annotated[str, typer.Option(help="The window of logged inputs: 1d, 6h.")] = "1d",
    against: Annotated[
        str | None, typer.Option(help="The version to compare with (default NAME@production).")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="The project: its gates, KPIs, input policy."),
    ] = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Replay logged production inputs through a candidate offline and compare it with the
    champion: agreement, accuracy or MAE on labels, KPIs, latency, segments, output drift.
    Exit 1 when the canary's gates would refuse it."""
    from dnnops.batch.replay import ReplayRequest, replay

    model, version = parse_ref(ref)
    champion = "production"
    if against is not None:
        other, champion = parse_ref(against)
        if other != model:
            raise UsageError(f"--against {against}: compare {model} with a version of {model}")
    project = _project(config, model)
    request = ReplayRequest(model, version, champion, since_s=parse_duration(since))
    if project is not None:
        request = replace(
            request,
            policy=project.rollout,
            serve=project.serve,
            kpis=project.monitor.kpis,
            group=project.data.group,
        )
    resolved = resolve_home(home)
    fleet_logs(resolved)  # the whole fleet's traffic, when DNNOPS_LOGS_URL names a store
    report = replay(open_registry(resolved), resolved, request)
    if json_out:
        print_json(report.to_dict())
    else:
        _show(report.to_dict())
    if not report.passed:
        raise typer.Exit(1)


def _project(config: Path | None, model: str) -> ProjectConfig | None:
    path = config if config is not None else Path("dnnops.yaml")
    if config is None and not path.is_file():
        return None  # the defaults: the canary's default gates
    project = load_config(path)
    if project.name != model:
        raise UsageError(f"{path} is the project of {project.name}, not {model}")
    return project


def _show(report: dict[str, object]) -> None:
    console = make_console()
    verdict = "PASSES" if report["passed"] else "REFUSED"
    console.print(
        f"replay of {report['model']}@{report['candidate']} against v{report['champion']} on "
        f"{report['rows']} logged rows: {verdict}: {report['message']}"
    )
    gates = report["gates"]
    assert isinstance(gates, list)
    rows = [[g["gate"], g["outcome"], g["message"]] for g in gates]
    console.print(rows_table("gates", ["gate", "outcome", "message"], rows))
    for key in ("agreement", "matches_log", "quality", "latency", "kpis", "redacted", "skipped"):
        console.print(f"{key}: {report[key]}")
