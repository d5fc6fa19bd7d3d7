"""Options and helpers shared by the command groups of the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from dnnops.home import Home

HomeOpt = Annotated[
    Path | None, typer.Option("--home", help="State folder (default .dnnops/ or DNNOPS_HOME).")
]
ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="The project file.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


def print_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2, default=str))


def fleet_logs(home: Home) -> Path:
    """The logs folder a reading command reads. With ``DNNOPS_LOGS_URL`` naming a store,
    every replica's shipped segments are pulled into it first (kept there: the next
    command fetches only what was shipped since), so a report from a laptop that runs no
    replica sees the whole fleet's traffic."""
    url = home.fleet_logs_url
    if url is not None:
        from dnnops.console import errors_console
        from dnnops.predlog.fleet_log import FleetLog

        moved = FleetLog(url, home.logs_dir, home.replica).pull()
        errors_console().print(
            f"pulled {moved.parts} part(s), {moved.bytes} bytes of the fleet's log from {url}"
        )
    return home.logs_dir
