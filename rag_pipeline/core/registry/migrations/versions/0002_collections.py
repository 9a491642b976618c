"""Collections with their own chunk defaults, API keys, and metadata on documents.

Every document there is belongs to `default`, which this revision creates.

Revision ID: 0002
Revises: 0001
"""

import time

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    collections = op.create_table(
        "collections",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("chunk_size", sa.Integer, nullable=True),
        sa.Column("chunk_overlap", sa.Integer, nullable=True),
        sa.Column("index_token", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    now = time.time()
    op.bulk_insert(
        collections,
        [
            {
                "name": "default",
                "description": "Documents uploaded without a collection",
                "index_token": "",
                "created_at": now,
                "updated_at": now,
            }
        ],
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("collections", sa.JSON, nullable=True),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("revoked_at", sa.Float, nullable=True),
    )
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("metadata", sa.JSON, nullable=True))
    op.execute("UPDATE documents SET collection = 'default' WHERE collection IS NULL")
    op.create_index(
        "ix_documents_collection_order", "documents", ["collection", "registered_at", "id"]
    )
    op.create_index("ix_documents_updated", "documents", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_documents_updated", "documents")
    op.drop_index("ix_documents_collection_order", "documents")
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("metadata")
    op.drop_table("api_keys")
    op.drop_table("collections")
