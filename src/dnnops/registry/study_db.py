"""Where a tuning study's trials live: Optuna's RDB storage beside the metadata database.

Optuna keeps its own Alembic revision in ``alembic_version``, the table dnnops's own
migrations use, so the two cannot share one namespace: on SQLite the study goes to a
sibling file (``tuning.db`` beside ``dnnops.db``), on PostgreSQL to the schema
``dnnops_tuning`` of the same database, so workers on several hosts that share the
metadata database share the study without another service.

This module prepares the database and says where it is; ``tune/storage.py`` opens
Optuna's storage on it (SQLAlchemy stays in ``registry/``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dnnops.errors import UsageError

SCHEMA = "dnnops_tuning"
SQLITE_FILE = "tuning.db"
LOCK_KEY = 0x646E6E6F7073_7475
"""The advisory lock the first worker holds while it creates the study's schema."""


@dataclass(frozen=True)
class StudyDatabase:
    """A database URL (with its password) and the engine options a study opens it with."""

    url: str
    engine_kwargs: dict[str, Any] = field(default_factory=dict)


@contextmanager
def study_database(db_url: str, storage_url: str | None = None) -> Iterator[StudyDatabase]:
    """The study's database for ``--storage URL``, or beside the metadata database
    ``db_url``: its SQLite folder or PostgreSQL schema is created when missing. On
    PostgreSQL the caller opens the study inside the block, under an advisory lock:
    workers starting together would race to create the schema and Optuna's tables
    (CREATE ... IF NOT EXISTS is not safe against a concurrent creator)."""
    if storage_url is not None and storage_url != db_url:
        yield StudyDatabase(storage_url)
        return
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        database = Path(url.database or "dnnops.db")
        database.parent.mkdir(parents=True, exist_ok=True)
        beside = url.set(database=str(database.with_name(SQLITE_FILE)))
        yield StudyDatabase(
            beside.render_as_string(hide_password=False), {"connect_args": {"timeout": 30}}
        )
        return
    if url.get_backend_name() != "postgresql":
        raise UsageError(
            f"dnnops tune keeps studies beside SQLite or PostgreSQL, not {url.get_backend_name()}; "
            "pass --storage URL"
        )
    rendered = url.render_as_string(hide_password=False)
    engine = create_engine(rendered)
    try:
        with engine.connect() as lock:
            lock.execute(text("SELECT pg_advisory_lock(:key)"), {"key": LOCK_KEY})
            try:
                with engine.begin() as connection:
                    connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
                options = {"connect_args": {"options": f"-c search_path={SCHEMA}"}}
                yield StudyDatabase(rendered, options)
            finally:
                lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
                lock.commit()
    finally:
        engine.dispose()


def study_location(db_url: str, storage_url: str | None) -> str:
    """Where the study is, in words, without a password."""
    if storage_url is not None and storage_url != db_url:
        return make_url(storage_url).render_as_string(hide_password=True)
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        return str(Path(url.database or "dnnops.db").with_name(SQLITE_FILE))
    return f"{url.render_as_string(hide_password=True)} (schema {SCHEMA})"
