"""Background retraining you can see: each ``dnnops retrain`` the server starts writes its
answer and its log to files under the home, and when it ends its outcome, exit code and
duration are recorded (the audit log, ``dnnops_retrain_runs_total{outcome}``); a failed
run raises the ``retraining`` alert, which the next good run resolves."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

RetrainOutcome = Literal["retrained", "not_retrained", "failed"]
RETRAIN_RUN = "retrain_run"
"""The audit log's action for a finished background retraining."""


@dataclass(frozen=True)
class RetrainRun:
    """A finished background ``dnnops retrain``."""

    model: str
    outcome: RetrainOutcome
    exit_code: int
    started_at: float
    duration_s: float
    log: str
    """Its stderr (progress, warnings, the error), beside ``answer``."""
    answer: str
    """Its stdout: the JSON ``dnnops retrain --json`` prints."""
    summary: str
    """What happened, in words (the retraining's own outcome, or why it failed)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RetrainProcess:
    """One ``dnnops retrain -c FILE`` child, its output kept in files under ``folder``."""

    def __init__(self, project_file: Path, model: str, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        self.model = model
        self.log = folder / f"retrain-{stamp}.log"
        self.answer = folder / f"retrain-{stamp}.json"
        self.started_at = time.time()
        command = [sys.executable, "-m", "dnnops", "retrain", "-c", str(project_file)]
        with self.log.open("wb") as errors, self.answer.open("wb") as out:
            self.process = subprocess.Popen(
                [*command, "--quiet", "--json"], stdout=out, stderr=errors
            )

    def finished(self) -> RetrainRun | None:
        """The run, once the child has exited; None while it runs."""
        code = self.process.poll()
        if code is None:
            return None
        return RetrainRun(
            model=self.model,
            outcome=_outcome(code, self.answer),
            exit_code=code,
            started_at=self.started_at,
            duration_s=round(time.time() - self.started_at, 3),
            log=str(self.log),
            answer=str(self.answer),
            summary=_summary(code, self.answer, self.log),
        )


def _outcome(code: int, answer: Path) -> RetrainOutcome:
    if code != 0:
        return "failed"
    return "retrained" if _answer(answer).get("challenger") is not None else "not_retrained"


def _summary(code: int, answer: Path, log: Path) -> str:
    if code == 0:
        return str(_answer(answer).get("outcome", "finished"))
    lines = [line for line in _tail(log).splitlines() if line.strip()]
    last = lines[-1] if lines else "no output"
    return f"exited with {code}: {last}"


def _answer(answer: Path) -> dict[str, Any]:
    try:
        found = json.loads(answer.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _tail(path: Path, size: int = 4096) -> str:
    try:
        with path.open("rb") as file:
            file.seek(max(0, path.stat().st_size - size))
            return file.read().decode(errors="replace")
    except OSError:
        return ""
