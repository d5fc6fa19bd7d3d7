"""Where a study's trials live: Optuna's RDB storage beside the metadata database.

Optuna keeps its own Alembic revision in ``alembic_version``, the table dnnops's own
migrations use, so the two cannot share one namespace: on SQLite the study goes to a
sibling file (``tuning.db`` beside ``dnnops.db``), on PostgreSQL to the schema
``dnnops_tuning`` of the same database, so workers on several hosts that share the
metadata database share the study without another service.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dnnops.errors import UsageError

if TYPE_CHECKING:
    from optuna.storages import RDBStorage

SCHEMA = "dnnops_tuning"
SQLITE_FILE = "tuning.db"


def tuning_storage(db_url: str, storage_url: str | None = None) -> RDBStorage:
    """The RDB storage for ``--storage URL``, or beside the metadata database ``db_url``."""
    from optuna.storages import RDBStorage

    if storage_url is not None and storage_url != db_url:
        return RDBStorage(storage_url)
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        database = Path(url.database or "dnnops.db")
        database.parent.mkdir(parents=True, exist_ok=True)
        beside = url.set(database=str(database.with_name(SQLITE_FILE)))
        return RDBStorage(
            beside.render_as_string(hide_password=False),
            engine_kwargs={"connect_args": {"timeout": 30}},
        )
    if url.get_backend_name() != "postgresql":
        raise UsageError(
            f"dnnops tune keeps studies beside SQLite or PostgreSQL, not {url.get_backend_name()}; "
            "pass --storage URL"
        )
    rendered = url.render_as_string(hide_password=False)
    options = {"connect_args": {"options": f"-c search_path={SCHEMA}"}}
    engine = create_engine(rendered)
    try:
        # workers starting together would race to create the schema and Optuna's tables
        # (CREATE ... IF NOT EXISTS is not safe against a concurrent creator): one at a time
        with engine.connect() as lock:
            lock.execute(text("SELECT pg_advisory_lock(:key)"), {"key": LOCK_KEY})
            try:
                with engine.begin() as connection:
                    connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
                return RDBStorage(rendered, engine_kwargs=options)
            finally:
                lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
                lock.commit()
    finally:
        engine.dispose()


LOCK_KEY = 0x646E6E6F7073_7475
"""The advisory lock the first worker holds while it creates the study's schema."""


def shown(db_url: str, storage_url: str | None) -> str:
    """Where the study is, in words, without a password."""
    if storage_url is not None and storage_url != db_url:
        return make_url(storage_url).render_as_string(hide_password=True)
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        return str(Path(url.database or "dnnops.db").with_name(SQLITE_FILE))
    return f"{url.render_as_string(hide_password=True)} (schema {SCHEMA})"
