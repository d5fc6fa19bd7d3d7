"""A uniform sample of a window's embeddings that merges minute by minute.

Each logged embedding gets a key: a hash of its prediction id, read as a number in
[0, 1). A minute keeps its ``MINUTE_ROWS`` rows of smallest key and the key below which it
kept every row (its threshold; 1 when it kept them all). Two samples merge by keeping
the rows under the smaller threshold, so a window holds every one of its rows whose key is
under its threshold: a uniform sample of the window (a bottom-k sketch, Cohen and Kaplan
2007) that no order of merging changes. A window keeps at most ``WINDOW_ROWS``: what the
exact two-sample test (``embedding_drift``) runs on in tens of milliseconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

MINUTE_ROWS = 64
"""Embeddings a minute keeps: 64 x 17 numbers in its digest (a steady stream's hour holds
a few thousand, more than a window keeps)."""
WINDOW_ROWS = 500
"""Embeddings a window keeps: the test's power grows slowly past a few hundred rows a side
(the reference keeps as many), its cost with the square."""


@dataclass(frozen=True)
class EmbeddingSample:
    """Rows ``[key, *embedding]`` sorted by key, every one under ``threshold``."""

    rows: list[list[float]] = field(default_factory=list)
    threshold: float = 1.0
    """Every embedding whose key is under it is kept; 1: every embedding seen."""
    seen: int = 0
    """Embeddings the sample was drawn from."""

    @property
    def embeddings(self) -> list[list[float]]:
        return [row[1:] for row in self.rows]

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "threshold": self.threshold, "seen": self.seen}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EmbeddingSample:
        return cls(list(data["rows"]), float(data["threshold"]), int(data["seen"]))


def sample_key(prediction_id: str) -> float:
    """A prediction's place in the sample's order: uniform in [0, 1), the same in every
    process and every rebuild of the digest."""
    digest = hashlib.blake2b(prediction_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def sample_of(
    keys: Sequence[float], embeddings: Sequence[Sequence[float]], *, keep: int = MINUTE_ROWS
) -> EmbeddingSample:
    """The ``keep`` embeddings of smallest key."""
    rows = sorted(([key, *embedding] for key, embedding in zip(keys, embeddings, strict=True)))
    return _capped(rows, 1.0, seen=len(rows), keep=keep)


def merge_samples(
    a: EmbeddingSample | None, b: EmbeddingSample | None, *, keep: int = WINDOW_ROWS
) -> EmbeddingSample | None:
    """The sample of both windows' embeddings (neither is changed)."""
    if a is None or b is None:
        return a or b
    threshold = min(a.threshold, b.threshold)
    rows = sorted(row for row in (*a.rows, *b.rows) if row[0] < threshold)
    return _capped(rows, threshold, seen=a.seen + b.seen, keep=keep)


def _capped(rows: list[list[float]], threshold: float, *, seen: int, keep: int) -> EmbeddingSample:
    if len(rows) <= keep:
        return EmbeddingSample(rows, threshold, seen)
    return EmbeddingSample(rows[:keep], rows[keep][0], seen)
