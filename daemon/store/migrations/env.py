"""Alembic's entry point. paperdigest always hands it an open connection, inside a transaction
that holds the store's write lock (see paperdigest.store.migrate), so migrations never race."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=None,
    render_as_batch=True,  # SQLite alters tables by copying them
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
