"""Open the metadata database and bring its schema to the newest Alembic revision.

SQLite (the default) gets WAL so readers never block the writer, a 30 s busy timeout,
and ``BEGIN IMMEDIATE`` transactions: a transaction takes the write lock when it starts,
so two processes that read-then-write (next version number) queue up instead of one
failing with "database is locked". PostgreSQL works through any SQLAlchemy URL.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError

from dnnops.errors import DnnopsError
from dnnops.files import PRIVATE_FILE, private_folder

if TYPE_CHECKING:
    from alembic.config import Config

BUSY_TIMEOUT_MS = 30_000
_PG_MIGRATION_LOCK = 0x646E6E6F  # "dnno": one advisory lock id for schema upgrades


class DatabaseError(DnnopsError):
    """The metadata database cannot be reached or upgraded."""

    http_status = 503  # worth retrying: the database may be back in a moment


_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def open_engine(url: str) -> Engine:
    """The process's engine for ``url`` (one pool per database, as SQLAlchemy advises),
    created and migrated to the newest schema revision on first use."""
    with _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is not None:
            return engine
        engine = _create(url)
        try:
            migrate(engine)
        except OperationalError as exc:
            engine.dispose()
            raise DatabaseError(
                f"cannot open the metadata database {_safe(url)}: {exc.orig}"
            ) from None
        _ENGINES[url] = engine
        return engine


@atexit.register
def close_engines() -> None:
    """Close every pooled connection (also called by tests between databases)."""
    with _ENGINES_LOCK:
        for engine in _ENGINES.values():
            engine.dispose()
        _ENGINES.clear()


def _create(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    if url.startswith("sqlite:///"):
        private_folder(Path(url.removeprefix("sqlite:///")).parent)
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(connection: Any, record: Any) -> None:
    connection.isolation_level = None  # let the "begin" hook issue BEGIN itself
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _alembic_config(connection: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("dnnops.registry") / "migrations")
    )
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration: revisions are numbered like their files (``0003_rollouts``),
    so this needs no Alembic import (half a second off every command that opens the db)."""
    folder = resources.files("dnnops.registry") / "migrations" / "versions"
    return max(f.name[:4] for f in folder.iterdir() if f.name[:4].isdigit())


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at; None when it has no schema yet."""
    if not connection.dialect.has_table(connection, "alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def migrate(engine: Engine) -> None:
    """Upgrade to head, one process at a time; a no-op when already there.

    On SQLite the whole of it, the first look included, runs under a file lock: a new file
    turns to WAL on its first connection, and two processes doing that at once meet in
    SQLite's lock upgrade, where one is answered "database is locked" at once, whatever the
    busy timeout (torchrun's two ranks on a new home; 3 failures in 15 tries of 4
    processes). PostgreSQL takes its advisory lock only to upgrade."""
    with _sqlite_lock(engine):
        with engine.connect() as connection:
            if current_revision(connection) == head_revision():
                return
        from alembic import command

        with _postgres_lock(engine), engine.begin() as connection:
            command.upgrade(_alembic_config(connection), "head")


@contextlib.contextmanager
def _postgres_lock(engine: Engine) -> Iterator[None]:
    """An advisory lock across PostgreSQL clients (nothing for another database)."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})


@contextlib.contextmanager
def _sqlite_lock(engine: Engine) -> Iterator[None]:
    """A file lock beside a SQLite file (nothing for another database or one in memory)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            if not Path(database).exists():  # made readable by its owner alone (its journal
                # and WAL files take its mode), under the lock as every first touch of it
                os.close(os.open(database, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
