"""Documents, their stages, and named state.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("collection", sa.String(64), nullable=False, server_default="default"),
        sa.Column("filename", sa.Text, nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("media_type", sa.String(128), nullable=True),
        sa.Column("bytes", sa.BigInteger, nullable=True),
        sa.Column("chunk_size", sa.Integer, nullable=True),
        sa.Column("chunk_overlap", sa.Integer, nullable=True),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("source_path", sa.Text, nullable=True),
        sa.Column("landing_path", sa.Text, nullable=True),
        sa.Column("supersedes", sa.String(200), nullable=True),
        sa.Column("registered_at", sa.Float, nullable=False),
        sa.Column("submitted_at", sa.Float, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("error_stage", sa.String(32), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("chunks", sa.Integer, nullable=True),
        sa.Column("indexed_at", sa.Float, nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("deleted_at", sa.Float, nullable=True),
        sa.Column("delete_reason", sa.Text, nullable=True),
        sa.Column("superseded_by", sa.String(200), nullable=True),
        sa.Column("release_partition", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_documents_order", "documents", ["registered_at", "id", "status"])
    op.create_index("ix_documents_status_order", "documents", ["status", "registered_at", "id"])
    op.create_index("ix_documents_sha256", "documents", ["sha256"])
    op.create_index("ix_documents_landing_path", "documents", ["landing_path"])
    op.create_index("ix_documents_run", "documents", ["run_id"])
    op.create_table(
        "stages",
        sa.Column(
            "document_id",
            sa.String(200),
            sa.ForeignKey("documents.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("stage", sa.String(32), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("at", sa.Float, nullable=True),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("metadata", sa.JSON, nullable=True),
    )
    op.create_table(
        "state",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("state")
    op.drop_table("stages")
    op.drop_table("documents")
