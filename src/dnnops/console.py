"""What people see on a terminal: Rich progress bars and tables, silent when piped."""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

PIPED_WIDTH = 1000
"""Columns of output that is not a terminal: a table piped to a file or ``grep`` keeps its
rows whole instead of Rich's default 80 columns (``COLUMNS`` still wins)."""


def make_console() -> Console:
    piped = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(highlight=False, width=PIPED_WIDTH if piped else None)


def errors_console() -> Console:
    return Console(stderr=True, highlight=False)


def wants_progress(quiet: bool) -> bool:
    """Progress bars only on an interactive terminal and when not asked to be quiet."""
    return not quiet and sys.stderr.isatty()


class EpochProgress:
    """A ``ProgressSink`` drawing one bar per epoch and a line of metrics when it ends."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.task: Any = None

    def start_epoch(self, epoch: int, epochs: int, batches: int, *, done: int) -> None:
        if self.task is None:
            self.progress.start()
        else:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(
            "train", total=batches, completed=done, epoch=epoch + 1, epochs=epochs
        )

    def advance(self, batches: int) -> None:
        self.progress.advance(self.task, batches)

    def end_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        shown = ", ".join(f"{k} {format_number(v)}" for k, v in metrics.items() if k != "epoch")
        self.progress.console.print(f"epoch {epoch + 1}: {shown}")

    def close(self) -> None:
        if self.task is not None:
            self.progress.stop()


class EpochLines:
    """A ``ProgressSink`` for output that is not a terminal (a log file, CI, ``nohup``):
    one line per epoch with its metrics, the time so far and the time left."""

    def __init__(self, console: Console, clock: Callable[[], float] = time.monotonic) -> None:
        self.console = console
        self.clock = clock
        self.started: float | None = None
        self.first_epoch = 0
        self.epochs = 0

    def start_epoch(self, epoch: int, epochs: int, batches: int, *, done: int) -> None:
        if self.started is None:
            self.started, self.first_epoch = self.clock(), epoch
        self.epochs = epochs

    def advance(self, batches: int) -> None:
        return None

    def end_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        elapsed = self.clock() - (self.started or 0.0)
        finished = epoch + 1 - self.first_epoch
        left = elapsed / finished * (self.epochs - epoch - 1) if finished else 0.0
        shown = ", ".join(f"{k} {format_number(v)}" for k, v in metrics.items() if k != "epoch")
        self.console.print(
            f"epoch {epoch + 1}/{self.epochs}: {shown} ({elapsed:.1f} s, ETA {left:.0f} s)",
            soft_wrap=True,
        )

    def close(self) -> None:
        return None


def progress_sink(quiet: bool) -> EpochProgress | EpochLines | None:
    """Bars on a terminal, a line per epoch on anything else, nothing with --quiet."""
    if quiet:
        return None
    if sys.stderr.isatty():
        return EpochProgress(make_console())
    return EpochLines(errors_console())


def format_number(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return f"{value:.4g}" if abs(value) >= 1e-3 else f"{value:.3e}"


def key_value_table(title: str, rows: Mapping[str, object]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("key", style="bold")
    table.add_column("value")
    for key, value in rows.items():
        table.add_row(key, format_number(value))
    return table


def rows_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(format_number(v) for v in row))
    return table


def format_budget(remaining: float | None) -> str:
    """An error budget left as a percentage; an overspent one says by how much."""
    if remaining is None or not math.isfinite(remaining):
        return "-"
    if remaining >= 0:
        return f"{remaining:.0%}"
    return f"{remaining:.0%} (overspent: {1 - remaining:.1f}x the budget used)"
