"""Optuna's RDB storage on the study's database (``registry/study_db.py`` says where)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dnnops.registry.study_db import study_database

if TYPE_CHECKING:
    from optuna.storages import RDBStorage


def tuning_storage(db_url: str, storage_url: str | None = None) -> RDBStorage:
    """The RDB storage for ``--storage URL``, or beside the metadata database ``db_url``."""
    from optuna.storages import RDBStorage

    with study_database(db_url, storage_url) as database:  # Optuna creates its tables here
        return RDBStorage(database.url, engine_kwargs=database.engine_kwargs)
