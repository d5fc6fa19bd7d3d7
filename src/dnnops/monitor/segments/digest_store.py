"""Digests of log segments kept on disk, so each settled segment is read once.

A digest file is named after its segment, the segment's size and modification time, and
a fingerprint of what was computed (the latency thresholds counted): if the segment grows
or the objectives change, the name no longer matches and the digest is computed afresh.
Segments still being written are digested in memory and not kept. Files are JSON and
``.npz`` loaded with ``allow_pickle=False``: a digest can never run code.

Each kept digest has four files: the full per-minute stats (``.json``), the label rows
(``.npz``), the sorted hashes of their ids (``.ids.npy``: a label join can skip a segment
none of its labels names) and the minutes' counts alone (``.counts.json``, a few KB). A
report over a
30-day SLO window needs the full stats of its own window only; for the older segments the
counts feed the error budgets, which keeps a 30-day report from parsing ~250 KB of
sketches and histograms per hour of traffic.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import orjson

from dnnops.monitor.segments.digest import (
    BUCKET_S,
    Digest,
    LabelRows,
    MinuteCounts,
    Stats,
    merge_digests,
)
from dnnops.monitor.stats.ids import id_hashes
from dnnops.predlog.frames import FrameStats
from dnnops.predlog.reader import predictions_of
from dnnops.predlog.records import PredictionRecord
from dnnops.vocabulary import GroupKey

log = logging.getLogger("dnnops.monitor")
FORMAT = 8
SETTLED_S = 30.0
"""A segment untouched this long is kept as a digest (the writer flushes far more often)."""

CHUNK_RECORDS = 10_000
"""Records decoded at a time. A record's inputs decode to Python objects (~2 KB for 64
numbers), so a whole segment of 150,000 records took ~650 MB for a moment, and the
objects a report keeps, allocated amid that garbage, pinned its pages: in the soak the
report child's resident heap grew from 29 to 48 MB above what it held in 10 minutes,
pages ``malloc_trim`` could not return. In chunks the peak is ~160 MB, in the same time
(``benchmarks/monitor/digest_chunks.py``)."""

Build = Callable[[list[PredictionRecord]], Digest]


def fingerprint(thresholds_ms: Sequence[float]) -> str:
    text = f"{FORMAT}|{BUCKET_S}|{sorted(float(t) for t in thresholds_ms)}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class DigestStore:
    """Digests of one log's segments. A store that lives as long as a server (its monitor
    loop, dashboard and report route share one) also follows the segments still being
    written: each call reads only the frames appended since the last."""

    def __init__(self, folder: Path, fingerprint: str, clock: Callable[[], float] = time.time):
        self.folder = folder
        self.fingerprint = fingerprint
        self.clock = clock
        self.built = 0
        """Segments read and digested (wholly or their new frames) by this store."""
        self._growing: dict[Path, tuple[int, Digest]] = {}
        """Per segment still being written: bytes digested so far, and their digest."""
        self._lock = threading.Lock()  # reports run on worker threads

    def digest(
        self, segment: Path, build: Build, *, counts_only: bool = False, rows: bool = True
    ) -> Digest:
        """The segment's digest. ``counts_only``: a kept digest's stats carry the counts
        the error budgets read and nothing else; ``rows=False`` leaves its label rows out
        (no label to join). A digest computed now is always whole."""
        try:
            status = segment.stat()
        except FileNotFoundError:  # removed by retention since it was listed
            return Digest()
        name = f"{segment_key(segment.stem, status)}.{self.fingerprint}"
        kept = self._load_counts(name, rows=rows) if counts_only else self._load(name)
        if kept is not None:
            return kept
        with self._lock:
            read, digest = self._read(segment, build, status.st_size)
        if status.st_mtime < self.clock() - SETTLED_S and read == status.st_size:
            try:
                self._save(segment.stem, name, digest)
            except OSError as exc:  # a read-only home still gets its report, just slower
                log.warning("could not keep the digest of %s: %s", segment.name, exc)
            self._growing.pop(segment, None)
        return digest

    def id_hashes(self, segment: Path) -> np.ndarray | None:
        """The sorted hashes of the ids a kept digest's label rows hold (``ids.npy``, a
        few bytes an id), so a join can tell it needs none of them without reading them;
        None when the segment has no kept digest."""
        try:
            status = segment.stat()
        except FileNotFoundError:
            return np.array([], dtype=np.uint64)
        path = self.folder / f"{segment_key(segment.stem, status)}.{self.fingerprint}.ids.npy"
        try:
            hashes: np.ndarray = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        return hashes if hashes.dtype == np.uint64 and hashes.ndim == 1 else None

    def prune(self, segments: list[Path]) -> int:
        """Remove the digests of segments no longer in the log (deleted to save space);
        returns how many digests (each of three files) went."""
        alive = {segment.stem for segment in segments}
        removed = 0
        for path in self.folder.glob("*.json") if self.folder.is_dir() else []:
            stem = path.name.split(".", 1)[0]
            if stem not in alive and not path.name.endswith(".counts.json"):
                for suffix in (".npz", ".counts.json", ".ids.npy"):
                    path.with_suffix(suffix).unlink(missing_ok=True)
                path.unlink()
                removed += 1
        with self._lock:
            for gone in [s for s in self._growing if s.stem not in alive]:
                del self._growing[gone]
        return removed

    def _read(self, segment: Path, build: Build, size: int) -> tuple[int, Digest]:
        """Digest up to the last whole frame, reading only what follows the part already
        digested (when the segment only grew since)."""
        offset, before = self._growing.get(segment, (0, Digest()))
        if size < offset:  # not the file we followed (replaced or truncated): start over
            offset, before = 0, Digest()
        with segment.open("rb") as file:
            file.seek(offset)
            data = file.read(max(0, size - offset))
        frames = FrameStats()
        records = predictions_of(data, frames)
        parts = [before] if offset else []
        while chunk := list(itertools.islice(records, CHUNK_RECORDS)):
            parts.append(build(chunk))
        self.built += 1
        digest = merge_digests(*parts)
        read = offset + frames.end
        self._growing[segment] = (read, digest)
        return read, digest

    def _load(self, name: str) -> Digest | None:
        summary, columns = self.folder / f"{name}.json", self.folder / f"{name}.npz"
        if not summary.exists() or not columns.exists():
            return None
        try:
            data = orjson.loads(summary.read_bytes())
            rows = self._load_rows(name, data["row_groups"])
            stats = {
                (tuple(entry["key"]), float(entry["bucket"])): Stats.from_json(entry["stats"])
                for entry in data["stats"]
            }
        except (OSError, ValueError, KeyError, TypeError):  # damaged: computed afresh
            return None
        return Digest(stats, rows)

    def _load_counts(self, name: str, *, rows: bool) -> Digest | None:
        counts, summary = self.folder / f"{name}.counts.json", self.folder / f"{name}.json"
        if not counts.exists() or not summary.exists():  # the summary is written last
            return None
        try:
            data = orjson.loads(counts.read_bytes())
            minutes: dict[GroupKey, list[MinuteCounts]] = {}
            for key, bucket, requests, answered, failed, slow, refused, asked in data["minutes"]:
                minutes.setdefault((key[0], key[1], key[2], key[3]), []).append(
                    MinuteCounts(float(bucket), requests, answered, failed, slow, refused, asked)
                )
            label_rows = self._load_rows(name, data["row_groups"]) if rows else {}
        except (OSError, ValueError, KeyError, TypeError, IndexError):  # damaged: afresh
            return None
        return Digest(rows=label_rows, counts=minutes)

    def _load_rows(self, name: str, groups: list[list[str]]) -> dict[GroupKey, LabelRows]:
        with np.load(self.folder / f"{name}.npz", allow_pickle=False) as arrays:
            return {
                (key[0], key[1], key[2], key[3]): LabelRows(
                    arrays[f"ids{i}"], arrays[f"ts{i}"], arrays[f"p{i}"]
                )
                for i, key in enumerate(groups)
            }

    def _save(self, stem: str, name: str, digest: Digest) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for stale in self.folder.glob(f"{stem}.*"):
            stale.unlink(missing_ok=True)
        groups = list(digest.rows)
        arrays: dict[str, np.ndarray] = {}
        for i, key in enumerate(groups):
            rows = digest.rows[key]
            arrays |= {f"ids{i}": rows.ids, f"ts{i}": rows.ts, f"p{i}": rows.outputs}
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)  # type: ignore[arg-type]
        summary = {
            "row_groups": [list(key) for key in groups],
            "stats": [
                {"key": list(key), "bucket": bucket, "stats": stats.to_json()}
                for (key, bucket), stats in digest.stats.items()
            ],
        }
        counts = {
            "row_groups": summary["row_groups"],
            "minutes": [
                [
                    list(key),
                    bucket,
                    s.requests,
                    s.predictions,
                    s.server_errors,
                    s.slower_than,
                    s.invalid,
                    s.answered_requests,
                ]
                for (key, bucket), s in digest.stats.items()
            ],
        }
        ids = np.concatenate([rows.ids for rows in digest.rows.values()] or [np.array([], str)])
        hashes = io.BytesIO()
        np.save(hashes, np.unique(id_hashes(ids)))
        # the columns and counts first: a summary without them is never read
        write_atomically(self.folder / f"{name}.ids.npy", hashes.getvalue())
        write_atomically(self.folder / f"{name}.npz", buffer.getvalue())
        write_atomically(self.folder / f"{name}.counts.json", orjson.dumps(counts))
        write_atomically(self.folder / f"{name}.json", orjson.dumps(summary))


def segment_key(stem: str, status: os.stat_result) -> str:
    """A segment's name, size and modification time: changes whenever the file does."""
    return f"{stem}.{status.st_size}.{status.st_mtime_ns}"


def write_atomically(path: Path, data: bytes) -> None:
    """Whole or not at all (no fsync: a digest lost to a crash is computed again)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_bytes(data)
    os.replace(partial, path)
