"""Alembic environment: migrations run on the connection ``dnnops.registry.db`` hands in."""

from __future__ import annotations

from alembic import context

from dnnops.registry.tables import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
