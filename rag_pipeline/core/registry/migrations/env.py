"""Alembic environment: the registry opens the connection and passes it in."""

from alembic import context

from rag_pipeline.core.registry.model import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
