"""Alembic environment: migrations run on the connection the gateway hands over at start."""

from alembic import context

from rejoinder.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
