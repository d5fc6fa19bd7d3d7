"""Deleting old log data: whole segments last written before a cutoff, with their digests.

A segment is the log's unit: one still being written, or written after the cutoff, is
kept whole, so a purge never tears a record and the newest data is never touched. Used
by ``logs.retention`` (the server applies it as it runs) and ``dnnops logs purge``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from dnnops.predlog.reader import (
    FEEDBACK,
    OUTCOMES,
    PREDICTIONS,
    segment_modified,
    segments,
)
from dnnops.predlog.writer import RotationPolicy, segment_started

DIGESTS = "digests"
"""The folder beside the logs holding each prediction segment's digest files."""


@dataclass
class Purged:
    segments: list[str] = field(default_factory=list)
    """Names of the segments deleted."""
    digests: int = 0
    """Digest files deleted with them."""
    bytes: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"segments": len(self.segments), "digests": self.digests, "bytes": self.bytes}


def purge_before(
    logs_dir: Path, cutoff: float, *, now: float | None = None, dry_run: bool = False
) -> Purged:
    """Delete (or, with ``dry_run``, list) every prediction and feedback segment last
    written before ``cutoff`` (seconds since the epoch), and the digests of the prediction
    segments among them. A segment a writer may still hold open (started less than the
    writer's rotation age ago) is kept: writing on into a deleted file would lose records."""
    moment = time.time() if now is None else now
    still_open_after = moment - RotationPolicy().max_age_s
    out = Purged()
    folders = [(logs_dir / PREDICTIONS, PREDICTIONS), (logs_dir / FEEDBACK, FEEDBACK)]
    outcomes = logs_dir / OUTCOMES
    if outcomes.is_dir():  # each KPI's outcomes, written as feedback records
        folders += [(kpi, FEEDBACK) for kpi in sorted(outcomes.iterdir()) if kpi.is_dir()]
    for folder, prefix in folders:
        for segment in segments(folder, prefix):
            if segment_modified(segment) >= cutoff:
                continue
            if segment_started(segment) >= still_open_after:
                continue
            try:
                size = segment.stat().st_size
                if not dry_run:
                    segment.unlink()
            except FileNotFoundError:  # purged meanwhile by another process
                continue
            out.segments.append(segment.name)
            out.bytes += size
            out.digests += _remove_digests(logs_dir / DIGESTS, segment.stem, dry_run=dry_run)
    return out


def _remove_digests(folder: Path, stem: str, *, dry_run: bool) -> int:
    """Digest files are named ``STEM.SIZE.MTIME.FINGERPRINT.{json,npz}``."""
    removed = 0
    for path in folder.glob(f"{stem}.*") if folder.is_dir() else []:
        if not dry_run:
            path.unlink(missing_ok=True)
        removed += 1
    return removed
