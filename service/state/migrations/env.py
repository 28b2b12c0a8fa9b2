"""Alembic's environment: runs the revisions on the connection ``service.state.migrate`` hands
over, inside its transaction (SQLite and PostgreSQL both have transactional DDL, so a failed
upgrade leaves the database at the revision it was at)."""

from __future__ import annotations

from alembic import context

from service.state.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters a table by copying it
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
