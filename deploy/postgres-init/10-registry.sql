-- The document registry's own database on the instance's server (its tables and alembic
-- history stay apart from Dagster's). Runs once, when the volume is first initialised.
CREATE DATABASE rag_registry;
