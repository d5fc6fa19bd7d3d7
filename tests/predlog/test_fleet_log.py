"""The fleet's log, shipped and pulled through an object store (fsspec's in-memory one
here; tests/serve/test_fleet.py runs it on a local S3 server): a sibling's copy holds
exactly the whole frames written, torn tails wait, restarts and concurrent shippers never
duplicate a byte, pulled segments are never shipped again, and retention reaches the store."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import fsspec
import pytest

from dnnops.errors import UsageError
from dnnops.home import resolve_home
from dnnops.predlog.fleet_log import FleetLog, StoredSegment, replica_name
from dnnops.predlog.frames import encode_frame
from dnnops.predlog.reader import PREDICTIONS, read_predictions
from dnnops.predlog.records import PredictionRecord
from dnnops.predlog.writer import segment_name

HOUR = 3600.0
FRESH = {"skip_instance_cache": True}


def store_url() -> str:
    return f"memory://fleet-{uuid.uuid4().hex}"


def record(pid: str, ts: float = 1.0) -> bytes:
    return encode_frame(
        PredictionRecord(ts=ts, status=200, id=pid, model="m", version="1").encode()
    )


def segment(logs: Path, started: float | None = None, writer: str = "abcdef") -> Path:
    """A segment opened at ``started`` (now: still being written)."""
    started = time.time() if started is None else started
    folder = logs / PREDICTIONS
    folder.mkdir(parents=True, exist_ok=True)
    return folder / segment_name(PREDICTIONS, started, 0, writer=writer)


def ids_in(logs: Path) -> list[str]:
    return [str(r.id) for r in read_predictions(logs / PREDICTIONS)]


def test_a_sibling_pulls_exactly_the_whole_frames_written(tmp_path: Path) -> None:
    url = store_url()
    a = FleetLog(url, tmp_path / "a", "replica-a")
    b = FleetLog(url, tmp_path / "b", "replica-b")
    written = segment(tmp_path / "a")
    written.write_bytes(record("p1") + record("p2"))
    assert a.ship().parts == 1
    b.pull()
    assert ids_in(tmp_path / "b") == ["p1", "p2"]

    torn = record("p4")
    with written.open("ab") as file:  # one more frame, and half of the next (mid-write)
        file.write(record("p3") + torn[:10])
    a.ship()
    b.pull()
    assert ids_in(tmp_path / "b") == ["p1", "p2", "p3"]
    with written.open("ab") as file:
        file.write(torn[10:])
    a.ship()
    b.pull()
    assert ids_in(tmp_path / "b") == ["p1", "p2", "p3", "p4"]
    pulled = list((tmp_path / "b" / PREDICTIONS).glob("*@replica-a.log"))
    assert [p.read_bytes() for p in pulled] == [written.read_bytes()]
    assert b.ship().parts == 0, "a pulled segment is never shipped again"
    assert a.pull().parts == 0, "a replica does not pull its own segments"


def test_a_restarted_replica_ships_on_from_where_the_store_stopped(tmp_path: Path) -> None:
    url = store_url()
    written = segment(tmp_path / "a")
    written.write_bytes(record("p1"))
    FleetLog(url, tmp_path / "a", "replica-a").ship()
    with written.open("ab") as file:  # logged, acknowledged, then the process was killed
        file.write(record("p2"))
    restarted = FleetLog(url, tmp_path / "a", "replica-a")
    moved = restarted.ship()
    assert (moved.parts, moved.bytes) == (1, len(record("p2")))
    b = FleetLog(url, tmp_path / "b", "replica-b")
    b.pull()
    assert ids_in(tmp_path / "b") == ["p1", "p2"]


def test_overlapping_parts_from_two_shippers_are_pulled_once(tmp_path: Path) -> None:
    """Two workers of one replica draining at once may ship overlapping ranges."""
    url = store_url()
    written = segment(tmp_path / "a")
    written.write_bytes(record("p1"))
    first = FleetLog(url, tmp_path / "a", "replica-a")
    second = FleetLog(url, tmp_path / "a", "replica-a")
    first.ship()
    second._shipped.clear()  # as if it had listed the store before the first shipped
    with written.open("ab") as file:
        file.write(record("p2"))
    second.ship()  # ships [0, end) beside the first's [0, p1)
    second_parts = fsspec.filesystem("memory").find(url.removeprefix("memory://"))
    assert len([p for p in second_parts if p.endswith(".part")]) == 2
    b = FleetLog(url, tmp_path / "b", "replica-b")
    b.pull()
    assert ids_in(tmp_path / "b") == ["p1", "p2"]


def test_old_segments_are_sealed_and_retention_reaches_the_store(tmp_path: Path) -> None:
    url = store_url()
    now = 1_700_000_000.0 + 3 * HOUR
    a = FleetLog(url, tmp_path / "a", "replica-a", clock=lambda: now)
    old = segment(tmp_path / "a", started=now - 3 * HOUR)
    old.write_bytes(record("old"))
    new = segment(tmp_path / "a", started=now - 60, writer="fedcba")
    new.write_bytes(record("new"))
    a.ship()
    fs = fsspec.filesystem("memory")
    sealed = [p for p in fs.find(url.removeprefix("memory://")) if p.endswith(".sealed")]
    assert len(sealed) == 1 and old.stem in sealed[0], "only a segment past its rotation age"
    assert a.purge_before(now - HOUR) == 1
    b = FleetLog(url, tmp_path / "b", "replica-b", clock=lambda: now)
    b.pull()
    assert ids_in(tmp_path / "b") == ["new"]


def test_replica_names_are_checked() -> None:
    assert replica_name("web-1.example.com") == "web-1"
    with pytest.raises(UsageError, match="DNNOPS_REPLICA"):
        replica_name("..")


def test_an_object_store_url_makes_a_fleet_log_beside_local_segments(tmp_path: Path) -> None:
    fleet = resolve_home(
        environ={"DNNOPS_HOME": str(tmp_path), "DNNOPS_LOGS_URL": "s3://bucket/logs"}
    )
    assert (fleet.logs_dir, fleet.fleet_logs_url) == (tmp_path / "logs", "s3://bucket/logs")
    alone = resolve_home(
        environ={"DNNOPS_HOME": str(tmp_path), "DNNOPS_LOGS_URL": str(tmp_path / "elsewhere")}
    )
    assert (alone.logs_dir, alone.fleet_logs_url) == (tmp_path / "elsewhere", None)
    named = resolve_home(environ={"DNNOPS_HOME": str(tmp_path), "DNNOPS_REPLICA": "web-2"})
    assert named.replica == "web-2"


@pytest.mark.slow
def test_on_s3_a_shipped_part_is_never_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shipper that believes the store empty (a restart whose disk lost a record, then
    wrote another of the same length) ships other bytes for a range the store holds: S3
    refuses the conditional create, and siblings keep what was shipped first."""
    from tests.s3 import BUCKET, s3_server

    with s3_server() as s3:  # s3fs caches clients by arguments: this test's stay its own
        for name, value in s3.env.items():
            monkeypatch.setenv(name, value)
        url = f"s3://{BUCKET}/fleet"
        written = segment(tmp_path / "a")
        written.write_bytes(record("first"))
        FleetLog(url, tmp_path / "a", "replica-a", storage_options=FRESH).ship()
        written.write_bytes(record("other"))  # same length, other bytes
        again = FleetLog(url, tmp_path / "a", "replica-a", storage_options=FRESH)
        again._shipped[StoredSegment("replica-a", PREDICTIONS, written.stem)] = 0
        again.ship()  # the same part's key: refused, and not an error
        assert len([k for k in s3.keys("fleet/") if k.endswith(".part")]) == 1
        FleetLog(url, tmp_path / "b", "replica-b", storage_options=FRESH).pull()
        assert ids_in(tmp_path / "b") == ["first"]
