"""A throwaway PostgreSQL server for the test session: initdb + pg_ctl in a temporary folder.

Found on PATH or under /usr/lib/postgresql/*/bin (Debian's ``postgresql`` package). As
root, the server runs as the ``postgres`` user (initdb refuses root). Without PostgreSQL
the tests that need it skip with how to enable them, unless DNNOPS_REQUIRE_ALL_TESTS=1
(CI) makes them fail.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ENABLE_HINT = "install PostgreSQL (Debian: apt-get install postgresql) to run these tests"


def find_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def missing(reason: str) -> None:
    if os.environ.get("DNNOPS_REQUIRE_ALL_TESTS") == "1":
        pytest.fail(f"PostgreSQL is required here (DNNOPS_REQUIRE_ALL_TESTS=1): {reason}")
    pytest.skip(f"{reason}; {ENABLE_HINT}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    runuser = shutil.which("runuser")
    if runuser is None:
        missing("running as root needs runuser to start PostgreSQL as the postgres user")
    return [str(runuser), "-u", "postgres", "--", *command]


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server on a free loopback port; yield a SQLAlchemy URL prefix (no database)."""
    initdb, pg_ctl = find_binary("initdb"), find_binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        missing("initdb/pg_ctl not found")
    folder = Path(tempfile.mkdtemp(prefix="dnnops-pg-"))
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    port = _free_port()
    subprocess.run(
        _as_postgres(
            [
                str(initdb),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_postgres(
            [str(pg_ctl), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"]
        ),
        check=True,
        capture_output=True,
    )
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    _RESTARTS[url] = [str(pg_ctl), "-D", str(data), "-o", options, "-l", str(folder / "log")]
    try:
        yield url
    finally:
        _RESTARTS.pop(url, None)
        subprocess.run(
            _as_postgres([str(pg_ctl), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


_RESTARTS: dict[str, list[str]] = {}
"""Per running server: its pg_ctl command line up to the action."""


def restart(server: str, *, down_s: float = 0.0) -> None:
    """Stop ``server`` at once (every connection dropped, as a crash would), stay down for
    ``down_s`` seconds, and start it again on the same port."""
    command = _RESTARTS[server]
    stop = [*command[:3], "-m", "immediate", "stop"]
    subprocess.run(_as_postgres(stop), check=True, capture_output=True)
    time.sleep(down_s)
    subprocess.run(_as_postgres([*command, "-w", "start"]), check=True, capture_output=True)


def create_database(server: str, name: str) -> str:
    import psycopg

    plain = server.replace("postgresql+psycopg://", "postgresql://")
    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(f"{plain}/postgres", autocommit=True) as connection:
                connection.execute(f'CREATE DATABASE "{name}"')
            return f"{server}/{name}"
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
