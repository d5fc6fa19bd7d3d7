"""What the training loop reports as it runs, and to whom: a Protocol and a no-op."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Protocol

RunStatus = Literal["running", "finished", "failed", "interrupted", "pruned"]


class RunRecorder(Protocol):
    def epoch(self, run_id: str, epoch: int, metrics: dict[str, float]) -> None: ...

    def checkpoint(
        self, run_id: str, step: int, epoch: int, *, path: Path, sha256: str
    ) -> None: ...

    def status(self, run_id: str, status: RunStatus, **fields: Any) -> None: ...


class NullRecorder:
    """Records nothing: used on non-zero ranks and in unit tests of the loop."""

    def epoch(self, run_id: str, epoch: int, metrics: dict[str, float]) -> None:
        return None

    def checkpoint(self, run_id: str, step: int, epoch: int, *, path: Path, sha256: str) -> None:
        return None

    def status(self, run_id: str, status: RunStatus, **fields: Any) -> None:
        return None
