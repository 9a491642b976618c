"""Sources of a collection (buckets), and each source's sync cursor: its objects as last taken.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "collection",
            sa.String(64),
            sa.ForeignKey("collections.name", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("lease_until", sa.Float, nullable=True),
        sa.Column("last_sync_at", sa.Float, nullable=True),
        sa.Column("last_counts", sa.JSON, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_index("ix_sources_collection", "sources", ["collection"])
    op.create_table(
        "source_objects",
        sa.Column(
            "source_id",
            sa.String(32),
            sa.ForeignKey("sources.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("etag", sa.Text, nullable=False),
        sa.Column("last_modified", sa.Float, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("document_id", sa.String(200), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("source_objects")
    op.drop_index("ix_sources_collection", "sources")
    op.drop_table("sources")
