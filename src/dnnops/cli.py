"""The ``dnnops`` command line: one sub-command group per lifecycle stage.

Commands are thin: they parse options, call the package, and print a table (or JSON with
``--json``). Errors from the package arrive as ``DnnopsError`` and leave as one line on
stderr with the exit code of INTERFACE.md (1 a check failed, 2 a usage error).

Each command's module is imported only when that command runs (``LazyGroup``), so
``dnnops monitor drift`` does not pay for importing torch and ``dnnops --help`` is instant.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer
from typer._click.core import Context  # typer 0.2x ships click as typer._click
from typer.core import TyperGroup

from dnnops.console import errors_console
from dnnops.errors import DnnopsError

COMMANDS: dict[str, tuple[str, str, str | None]] = {
    "init": ("dnnops.cli_lifecycle", "app", "init"),
    "quickstart": ("dnnops.cli_lifecycle", "app", "quickstart"),
    "train": ("dnnops.cli_lifecycle", "app", "train"),
    "runs": ("dnnops.cli_lifecycle", "runs_app", None),
    "data": ("dnnops.cli_lifecycle", "data_app", None),
    "models": ("dnnops.cli_models", "models_app", None),
    "eval": ("dnnops.cli_models", "eval_command", None),
    "serve": ("dnnops.cli_serve", "serve_command", None),
    "feedback": ("dnnops.cli_serve", "feedback_command", None),
    "loadtest": ("dnnops.cli_serve", "loadtest_command", None),
    "logs": ("dnnops.cli_serve", "logs_app", None),
    "monitor": ("dnnops.cli_monitor", "monitor_app", None),
    "slo": ("dnnops.cli_monitor", "slo_app", None),
    "rollout": ("dnnops.cli_rollout", "rollout_app", None),
    "retrain": ("dnnops.cli_retrain", "retrain_command", None),
    "export": ("dnnops.cli_export", "export_app", None),
}
"""Command name -> (module, attribute, command inside that Typer app if any)."""


class LazyGroup(TyperGroup):
    """A click group that imports a command's module the first time it is asked for."""

    def list_commands(self, ctx: Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Context, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return None
        module, attribute, inner = COMMANDS[cmd_name]
        target: Any = getattr(importlib.import_module(module), attribute)
        command: Any
        if isinstance(target, typer.Typer):  # a group, even with one command (logs show)
            command = typer.main.get_group(target)
        else:  # a plain function: a command of its own
            single = typer.Typer(add_completion=False)
            single.command(cmd_name)(target)
            command = typer.main.get_command(single)
        if inner is not None:  # one command of a Typer app that holds several
            return command.get_command(ctx, inner)
        command.name = cmd_name
        return command


app = typer.Typer(
    cls=LazyGroup,
    no_args_is_help=True,
    add_completion=False,
    help="Take a DNN from data to production.",
)


@app.callback()
def root() -> None:
    """Take a DNN from data to production."""


def main() -> None:
    """Console entry point: run the app and turn ``DnnopsError`` into an exit code."""
    try:
        app(prog_name="dnnops")
    except DnnopsError as exc:
        errors_console().print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        sys.exit(exc.exit_code)
