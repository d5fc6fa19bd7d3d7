"""Opening the metadata database: processes that open a new SQLite home at the same moment
(torchrun's ranks, a server's workers) all get it, none "database is locked"."""

from __future__ import annotations

import fcntl
import subprocess
import sys
import time
from pathlib import Path

OPEN_AT = """
import sys, time
from dnnops.registry.db import open_engine
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
print("opening", flush=True)
open_engine(sys.argv[1])
"""


def _open_together(url: str, processes: int) -> list[tuple[int, str]]:
    at = time.time() + 2.0  # every process imported and waiting when the moment comes
    opening = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AT, url, str(at)], stderr=subprocess.PIPE, text=True
        )
        for _ in range(processes)
    ]
    errors = [p.communicate(timeout=120)[1] for p in opening]
    return [(p.returncode, err) for p, err in zip(opening, errors, strict=True)]


def test_processes_opening_a_new_sqlite_home_together_all_get_it(tmp_path: Path) -> None:
    for attempt in range(3):  # before the fix 3 of 15 such attempts had a failure: the
        # test below pins the mechanism deterministically
        url = f"sqlite:///{tmp_path / f'new{attempt}' / 'dnnops.db'}"
        for code, err in _open_together(url, processes=4):
            assert code == 0, err[-600:]


def test_a_new_sqlite_file_is_first_opened_under_the_lock(tmp_path: Path) -> None:
    """The mechanism, deterministically: while another process holds the lock, an open
    waits without touching the file; released, it opens and migrates."""
    database = tmp_path / "dnnops.db"
    with open(f"{database}.migrate.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        opening = subprocess.Popen(
            [sys.executable, "-c", OPEN_AT, f"sqlite:///{database}", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert opening.stdout is not None
        assert opening.stdout.readline() == "opening\n"  # imported: the open itself takes ms
        time.sleep(1.0)
        assert opening.poll() is None
        assert not database.exists()
        fcntl.flock(lock, fcntl.LOCK_UN)
    _, err = opening.communicate(timeout=60)
    assert opening.returncode == 0, err
    assert database.exists()
