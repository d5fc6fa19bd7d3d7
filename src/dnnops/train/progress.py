"""How the loop reports progress to a person: a Protocol, so the CLI can plug in Rich."""

from __future__ import annotations

from typing import Protocol


class ProgressSink(Protocol):
    def start_epoch(self, epoch: int, epochs: int, batches: int, *, done: int) -> None: ...

    def advance(self, batches: int) -> None: ...

    def end_epoch(self, epoch: int, metrics: dict[str, float]) -> None: ...


class SilentProgress:
    def start_epoch(self, epoch: int, epochs: int, batches: int, *, done: int) -> None:
        return None

    def advance(self, batches: int) -> None:
        return None

    def end_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        return None
