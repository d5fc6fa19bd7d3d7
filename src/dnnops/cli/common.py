"""Options and helpers shared by the command groups of the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

HomeOpt = Annotated[
    Path | None, typer.Option("--home", help="State folder (default .dnnops/ or DNNOPS_HOME).")
]
ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="The project file.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


def print_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2, default=str))
