"""Read a log back: every intact record in order, torn tails and damage counted, never misread.

This is the API monitoring uses, and what ``dnnops logs show`` prints.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from dnnops.predlog.frames import FrameStats, iter_frames


def segments(folder: Path, prefix: str) -> list[Path]:
    return sorted(folder.glob(f"{prefix}-*.log")) if folder.is_dir() else []


def read_records(
    folder: Path, prefix: str, stats: FrameStats | None = None
) -> Iterator[dict[str, Any]]:
    """Records of every segment, oldest first."""
    stats = stats if stats is not None else FrameStats()
    for path in segments(folder, prefix):
        for payload in iter_frames(path.read_bytes(), stats):
            try:
                record = orjson.loads(payload)
            except orjson.JSONDecodeError:
                stats.corrupt += 1
                continue
            if isinstance(record, dict):
                yield record
