"""The ``dnnops`` command line: one sub-command group per lifecycle stage.

Commands are thin: they parse options, call the package, and print a table (or JSON with
``--json``). Errors from the package arrive as ``DnnopsError`` and leave as one line on
stderr with the exit code of INTERFACE.md (1 a check failed, 2 a usage error).

Each command's module is imported only when that command runs (``LazyGroup``), so
``dnnops monitor drift`` does not pay for importing torch and ``dnnops --help`` is instant.
"""

from __future__ import annotations

import importlib
import logging
import sys
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from dnnops.console import errors_console
from dnnops.errors import DnnopsError

ClickContext = Any
"""The click context typer passes to a group's methods. Typer 0.2x vendors click as the
private ``typer._click`` and exports no name for its base ``Context`` (``typer.Context`` is
a subclass, too narrow for an override), so the methods take it untyped."""


@dataclass(frozen=True)
class Entry:
    module: str
    attribute: str
    help: str
    """The short help, here so that ``dnnops --help`` lists commands without importing one."""
    inner: str | None = None
    """The command inside that Typer app, when it holds several."""


COMMANDS: dict[str, Entry] = {
    "init": Entry(
        "dnnops.cli.lifecycle",
        "app",
        "Write a dnnops.yaml: an example, or inferred from your CSV.",
        "init",
    ),
    "quickstart": Entry(
        "dnnops.cli.lifecycle",
        "app",
        "The whole lifecycle on builtin:digits, in about 30 s.",
        "quickstart",
    ),
    "train": Entry(
        "dnnops.cli.lifecycle", "app", "Train, evaluate and register the project's model.", "train"
    ),
    "tune": Entry(
        "dnnops.cli.tune",
        "tune_command",
        "Search hyperparameters (Optuna); register the best trial.",
        None,
    ),
    "runs": Entry("dnnops.cli.runs", "runs_app", "Training runs in the metadata store.", None),
    "data": Entry("dnnops.cli.lifecycle", "data_app", "Profile and validate data files.", None),
    "models": Entry(
        "dnnops.cli.models", "models_app", "Registered model versions, aliases, integrity.", None
    ),
    "eval": Entry("dnnops.cli.models", "eval_command", "Evaluate a version on labeled data.", None),
    "predict": Entry(
        "dnnops.cli.predict",
        "predict_command",
        "Predict a CSV or Parquet file with a registered version.",
        None,
    ),
    "serve": Entry(
        "dnnops.cli.serve", "serve_command", "Serve registered versions over HTTP.", None
    ),
    "feedback": Entry(
        "dnnops.cli.serve",
        "feedback_command",
        "Send ground-truth labels (prediction_id,label).",
        None,
    ),
    "outcomes": Entry(
        "dnnops.cli.outcomes",
        "outcomes_command",
        "Send business outcomes (prediction_id,name,value) for the KPIs.",
        None,
    ),
    "keys": Entry("dnnops.cli.keys", "keys_app", "Named API keys and their roles.", None),
    "replay": Entry(
        "dnnops.cli.replay",
        "replay_command",
        "Replay logged production inputs through a candidate, offline, before its canary.",
        None,
    ),
    "loadtest": Entry(
        "dnnops.cli.serve", "loadtest_command", "Drive load at a running server.", None
    ),
    "logs": Entry("dnnops.cli.logs", "logs_app", "Prediction and feedback records.", None),
    "monitor": Entry(
        "dnnops.cli.monitor", "monitor_app", "SLIs, drift, quality and SLO budgets.", None
    ),
    "incident": Entry(
        "dnnops.cli.monitor",
        "incident_command",
        "Write an incident bundle (report, drift, audit, inputs) to a zip.",
        None,
    ),
    "labels": Entry("dnnops.cli.monitor", "labels_app", "Which predictions to label next.", None),
    "slo": Entry(
        "dnnops.cli.monitor", "slo_app", "Service level objectives and error budgets.", None
    ),
    "rollout": Entry(
        "dnnops.cli.rollout", "rollout_app", "Canary, shadow and blue-green rollouts.", None
    ),
    "retrain": Entry(
        "dnnops.cli.retrain",
        "retrain_app",
        "Retrain when a trigger fired; `status` lists the background runs.",
        None,
    ),
    "export": Entry(
        "dnnops.cli.export", "export_app", "Grafana dashboards and Prometheus rules.", None
    ),
}
"""Command name -> where it lives and its short help."""


class LazyGroup(TyperGroup):
    """A click group that imports a command's module the first time it is asked for."""

    listing = False
    """True while the group's own help is written: commands are then stubs with their help."""

    def list_commands(self, ctx: ClickContext) -> list[str]:
        return list(COMMANDS)

    def format_help(self, ctx: ClickContext, formatter: Any) -> None:
        LazyGroup.listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            LazyGroup.listing = False

    def get_command(self, ctx: ClickContext, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return None
        entry = COMMANDS[cmd_name]
        if LazyGroup.listing:
            return TyperCommand(cmd_name, help=entry.help)
        target: Any = getattr(importlib.import_module(entry.module), entry.attribute)
        command: Any
        if isinstance(target, typer.Typer):  # a group, even with one command (logs show)
            command = typer.main.get_group(target)
        else:  # a plain function: a command of its own
            single = typer.Typer(add_completion=False)
            single.command(cmd_name)(target)
            command = typer.main.get_command(single)
        if entry.inner is not None:  # one command of a Typer app that holds several
            return command.get_command(ctx, entry.inner)
        command.name = cmd_name
        return command


app = typer.Typer(
    cls=LazyGroup,
    no_args_is_help=True,
    add_completion=False,
    help="Take a DNN from data to production.",
)


def _version(value: bool) -> None:
    if value:
        from dnnops.version import __version__

        typer.echo(f"dnnops {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Take a DNN from data to production."""


class _StderrWarnings(logging.Handler):
    """The library's warnings (a dropped row-number column, a suspected leak) as
    ``warning: ...`` lines on whatever ``sys.stderr`` is when they are emitted."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(f"{record.levelname.lower()}: {record.getMessage()}\n")
        except Exception:  # a closed stream must not fail the command
            self.handleError(record)


def show_warnings() -> None:
    """Print the ``dnnops`` loggers' warnings to stderr, once per process."""
    logger = logging.getLogger("dnnops")
    if not any(isinstance(h, _StderrWarnings) for h in logger.handlers):
        logger.addHandler(_StderrWarnings(logging.WARNING))


def main() -> None:
    """Console entry point: run the app and turn ``DnnopsError`` into an exit code."""
    show_warnings()
    try:
        app(prog_name="dnnops")
    except DnnopsError as exc:
        errors_console().print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        sys.exit(exc.exit_code)
