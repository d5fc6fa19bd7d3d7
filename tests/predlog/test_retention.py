"""Log retention and ``dnnops logs purge``: whole segments last written before the cutoff
go with their digests; newer ones, and ones a writer may still hold open, stay."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dnnops.monitor.segments.digest import digest_records
from dnnops.monitor.segments.digest_store import DigestStore
from dnnops.predlog.reader import FEEDBACK, PREDICTIONS, read_predictions, segments
from dnnops.predlog.records import FeedbackRecord, PredictionRecord
from dnnops.predlog.retention import DIGESTS, purge_before
from dnnops.predlog.writer import SegmentWriter
from tests.conftest import CliResult

DAY = 86400.0


def _segment(folder: Path, prefix: str, payloads: list[bytes], *, age_s: float) -> Path:
    """A closed segment opened and last written ``age_s`` ago."""
    started = time.time() - age_s
    writer = SegmentWriter(folder, prefix, clock=lambda: started).start()
    writer.append(payloads)
    writer.close()
    path = max(folder.glob(f"{prefix}-*.log"), key=lambda p: p.stat().st_mtime_ns)
    os.utime(path, (started, started))
    return path


def _logs(home: Path) -> dict[str, Path]:
    logs = home / "logs"
    old = PredictionRecord(ts=time.time() - 10 * DAY, status=200, id="old", output=1)
    new = PredictionRecord(ts=time.time(), status=200, id="new", output=1)
    made = {
        "old": _segment(logs / PREDICTIONS, PREDICTIONS, [old.encode()], age_s=10 * DAY),
        "new": _segment(logs / PREDICTIONS, PREDICTIONS, [new.encode()], age_s=60),
        "old_labels": _segment(
            logs / FEEDBACK, FEEDBACK, [FeedbackRecord("old", 1, old.ts).encode()], age_s=9 * DAY
        ),
    }
    store = DigestStore(logs / DIGESTS, "fp")
    store.digest(made["old"], lambda rs: digest_records(rs, lambda m, v: None, []))
    assert list((logs / DIGESTS).glob(f"{made['old'].stem}.*")), "the old segment's digest"
    return made


def test_purge_deletes_old_segments_and_their_digests(tmp_path: Path) -> None:
    made = _logs(tmp_path)
    logs = tmp_path / "logs"
    listed = purge_before(logs, time.time() - 2 * DAY, dry_run=True)
    assert sorted(listed.segments) == sorted([made["old"].name, made["old_labels"].name])
    assert made["old"].exists(), "a dry run deletes nothing"
    purged = purge_before(logs, time.time() - 2 * DAY)
    assert (len(purged.segments), purged.digests) == (2, 4)  # json, counts.json, npz, ids.npy
    assert not made["old"].exists() and not made["old_labels"].exists()
    assert not list((logs / DIGESTS).glob(f"{made['old'].stem}.*"))
    assert [r.id for r in read_predictions(logs / PREDICTIONS)] == ["new"]


def test_a_segment_a_writer_may_still_hold_is_kept(tmp_path: Path) -> None:
    """Opened 10 minutes ago, untouched since: deleting it would lose what the writer
    appends next, so it stays even when the cutoff is later than its last write."""
    logs = tmp_path / "logs"
    record = PredictionRecord(ts=time.time(), status=200, id="a", output=1)
    path = _segment(logs / PREDICTIONS, PREDICTIONS, [record.encode()], age_s=600)
    assert purge_before(logs, time.time()).segments == []
    assert path.exists()


def test_dnnops_logs_purge(
    tmp_path: Path, cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _logs(tmp_path)
    monkeypatch.setenv("DNNOPS_HOME", str(tmp_path))
    shown = cli("logs", "purge", "--before", "2d", "--dry-run", "--json")
    assert shown.code == 0, shown.err
    assert shown.json()["segments"] == 2 and shown.json()["dry_run"] is True
    assert made["old"].exists()
    done = cli("logs", "purge", "--before", "2d")
    assert done.code == 0 and "deleted 2 segments" in done.out
    assert [p.name for p in segments(tmp_path / "logs" / PREDICTIONS, PREDICTIONS)] == [
        made["new"].name
    ]
    wrong = cli("logs", "purge", "--before", "last tuesday")
    assert wrong.code == 2 and "--before" in wrong.err and "Traceback" not in wrong.err
