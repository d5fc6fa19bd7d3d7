"""A fleet's prediction log: each replica goes on writing its fast local segments, ships
what they gained to a shared store (any fsspec URL: ``DNNOPS_LOGS_URL``) every few seconds
and when it drains, and pulls what its siblings shipped into its own logs folder. The
report, the dashboard, the rollout gates, the label checks and retraining then read the
whole fleet's traffic with the readers they already have.

Layout in the store: ``<url>/<replica>/<log>/<segment stem>/<offset>-<end>.part``, where a
part holds whole frames: bytes ``offset..end`` of that local segment. Parts are created
with ``If-None-Match`` (never overwritten), so a replica restarted after SIGKILL ships on
from where the store says it stopped, and two processes shipping the same bytes cannot
clash; a puller that finds overlapping parts appends only the bytes it lacks. A segment
whose writer can no longer write to it (its rotation age has passed: writers rotate before
they write) and whose bytes are all shipped gets ``<end>.sealed``; pullers stop listing a
segment once they hold it up to its seal. A sibling's
segment is pulled to ``logs/<log>/<stem>@<replica>.log``: a name no local writer uses, so
pulled segments are never shipped again.

Recovery point: a replica lost for good (its disk gone) costs what it had not shipped,
at most ``ship_every`` of traffic plus any backlog while the store was unreachable.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec

from dnnops.encryption import s3_encryption
from dnnops.errors import UsageError
from dnnops.predlog.frames import FrameStats, stored_frames
from dnnops.predlog.reader import FEEDBACK, PREDICTIONS, segments
from dnnops.predlog.writer import RotationPolicy, segment_started

log = logging.getLogger("dnnops.predlog")
LOGS = (PREDICTIONS, FEEDBACK)
PART = re.compile(r"^(\d{16})-(\d{16})\.part$")
SEAL = re.compile(r"^(\d{16})\.sealed$")
REPLICA = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
SEAL_AFTER_S = 60.0
"""Margin past a segment's rotation age before it is sealed (clocks differ a little)."""
PULLED = "@"
"""Marks a segment pulled from a sibling: ``<stem>@<replica>.log``."""


def replica_name(name: str) -> str:
    """A replica's name as it appears in the store and in records: a host or pod name."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "-", name.split(".")[0]).strip("-_")
    if not REPLICA.match(cleaned):
        raise UsageError(
            f"replica name {name!r} is not usable: set DNNOPS_REPLICA to letters, digits, "
            "'-' or '_' (at most 63)"
        )
    return cleaned


def is_pulled(segment: Path) -> bool:
    return PULLED in segment.stem


@dataclass(frozen=True)
class StoredSegment:
    """One segment in the store: whose, which log, which local segment."""

    replica: str
    log: str
    stem: str

    @property
    def started(self) -> float:
        return segment_started(Path(f"{self.stem}.log"))

    def folder(self, root: str) -> str:
        return f"{root}/{self.replica}/{self.log}/{self.stem}"

    def part(self, root: str, offset: int, end: int) -> str:
        return f"{self.folder(root)}/{offset:016d}-{end:016d}.part"

    def local_copy(self, logs_dir: Path) -> Path:
        """Where a sibling's segment is pulled to."""
        return logs_dir / self.log / f"{self.stem}{PULLED}{self.replica}.log"


@dataclass
class Listing:
    parts: list[tuple[int, int]] = field(default_factory=list)
    """(offset, end) of each part, in order."""
    sealed: int | None = None
    """The segment's final size, once its writer can no longer add to it."""


@dataclass
class Moved:
    """What one ship or pull moved."""

    parts: int = 0
    bytes: int = 0


class FleetLog:
    """Ships this replica's segments under ``<url>/<replica>/`` and pulls its siblings'
    into ``logs_dir``. Blocking calls (object-store requests): run them off the event
    loop."""

    def __init__(
        self,
        url: str,
        logs_dir: Path,
        replica: str,
        *,
        retention_s: float | None = None,
        rotation: RotationPolicy | None = None,
        clock: Callable[[], float] = time.time,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        options = {**s3_encryption(self.url), **(storage_options or {})}
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **options)
        self.logs_dir = logs_dir
        self.replica = replica_name(replica)
        self.retention_s = retention_s
        self.rotation = rotation or RotationPolicy()
        self.clock = clock
        self._shipped: dict[StoredSegment, int] = {}
        """This replica's segments: the end of the bytes the store holds."""
        self._seen_size: dict[StoredSegment, int] = {}
        self._pulled: dict[StoredSegment, int] = {}
        """Siblings' segments: the bytes appended to the local copy."""
        self._settled: set[StoredSegment] = set()
        """Siblings' segments pulled whole (or older than retention): never listed again."""

    # -- shipping ----------------------------------------------------------------------

    def ship(self) -> Moved:
        """Ship the whole frames every local segment gained since the last call."""
        out = Moved()
        for name in LOGS:
            for path in segments(self.logs_dir / name, name):
                if not is_pulled(path):
                    self._ship_segment(path, StoredSegment(self.replica, name, path.stem), out)
        return out

    def _ship_segment(self, path: Path, segment: StoredSegment, out: Moved) -> None:
        try:
            size = path.stat().st_size
        except FileNotFoundError:  # purged by retention since it was listed
            return
        if self._seen_size.get(segment) == size:
            return
        if segment not in self._shipped:  # after a restart: from where the store stopped
            self._shipped[segment] = max((e for _, e in self._listing(segment).parts), default=0)
        start = self._shipped[segment]
        if size > start:
            with path.open("rb") as file:
                file.seek(start)
                data = file.read(size - start)
            frames = FrameStats()
            for _ in stored_frames(data, frames):  # whole frames, shipped as stored (sealed)
                pass
            if frames.end:
                part = segment.part(self.root, start, start + frames.end)
                with contextlib.suppress(FileExistsError):  # shipped before a restart
                    self.fs.pipe_file(part, data[: frames.end], mode="create")
                self._shipped[segment] = start + frames.end
                out.parts += 1
                out.bytes += frames.end
            if start + frames.end < size:  # a frame still being written: next time
                return
        self._seen_size[segment] = size
        if segment.started < self.clock() - self.rotation.max_age_s - SEAL_AFTER_S:
            with contextlib.suppress(FileExistsError):
                self.fs.pipe_file(
                    f"{segment.folder(self.root)}/{size:016d}.sealed", b"", mode="create"
                )

    def _listing(self, segment: StoredSegment) -> Listing:
        try:
            paths = self.fs.ls(segment.folder(self.root), detail=False, refresh=True)
        except FileNotFoundError:
            return Listing()
        out = Listing()
        for path in paths:
            base = str(path).rsplit("/", 1)[-1]
            if match := PART.match(base):
                out.parts.append((int(match[1]), int(match[2])))
            elif match := SEAL.match(base):
                out.sealed = max(out.sealed or 0, int(match[1]))
        out.parts.sort()
        return out

    # -- pulling -----------------------------------------------------------------------

    def pull(self) -> Moved:
        """Append to the local copies of the siblings' segments whatever they shipped since."""
        out = Moved()
        for replica in self._replicas():
            if replica == self.replica:
                continue
            for name in LOGS:
                for stem in self._names(f"{self.root}/{replica}/{name}"):
                    if stem.startswith(f"{name}-") and PULLED not in stem:
                        self._pull_segment(StoredSegment(replica, name, stem), out)
        return out

    def _replicas(self) -> list[str]:
        return [r for r in self._names(self.root) if REPLICA.match(r)]

    def _names(self, folder: str) -> list[str]:
        try:
            entries = self.fs.ls(folder, detail=False, refresh=True)
        except FileNotFoundError:
            return []
        return sorted(str(entry).rstrip("/").rsplit("/", 1)[-1] for entry in entries)

    def _pull_segment(self, segment: StoredSegment, out: Moved) -> None:
        if segment in self._settled:
            return
        if self.retention_s is not None and segment.started < (
            self.clock() - self.retention_s - self.rotation.max_age_s
        ):
            self._settled.add(segment)  # older than anything retention keeps
            return
        local = segment.local_copy(self.logs_dir)
        have = self._pulled.get(segment)
        if have is None:
            have = local.stat().st_size if local.exists() else 0
        listing = self._listing(segment)
        for offset, end in listing.parts:
            if end <= have or offset > have:
                continue  # already here, or after a gap a later listing fills
            data = self.fs.cat_file(segment.part(self.root, offset, end))
            if len(data) != end - offset:
                log.warning(
                    "fleet log: %s has %d bytes; skipped",
                    segment.part(self.root, offset, end),
                    len(data),
                )
                break
            local.parent.mkdir(parents=True, exist_ok=True)
            with local.open("ab") as file:
                file.write(data[have - offset :])
            out.parts += 1
            out.bytes += end - have
            have = end
        self._pulled[segment] = have
        if listing.sealed is not None and have >= listing.sealed:
            self._settled.add(segment)

    # -- retention ---------------------------------------------------------------------

    def purge_before(self, cutoff: float) -> int:
        """Delete every replica's shipped segments that stopped growing before ``cutoff``
        (started a rotation earlier): the fleet's leader applies ``logs.retention`` to
        the store too, replicas gone for good included. Returns how many went."""
        removed = 0
        for replica in self._replicas():
            for name in LOGS:
                for stem in self._names(f"{self.root}/{replica}/{name}"):
                    segment = StoredSegment(replica, name, stem)
                    if segment.started < cutoff - self.rotation.max_age_s:
                        with contextlib.suppress(FileNotFoundError):
                            self.fs.rm(segment.folder(self.root), recursive=True)
                            removed += 1
        return removed
