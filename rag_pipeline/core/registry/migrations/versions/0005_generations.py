"""A collection's index generations: the one serving search and the one a model switch writes.

Existing collections are generation 1, the index they have. `switch_documents` records what a
switch has written to its pending generation, a row per document.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.add_column(sa.Column("generation", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("pending_model", sa.String(200), nullable=True))
        batch.add_column(sa.Column("pending_generation", sa.Integer, nullable=True))
        batch.add_column(
            sa.Column("last_generation", sa.Integer, nullable=False, server_default="1")
        )
    op.create_table(
        "switch_documents",
        sa.Column("collection", sa.String(64), primary_key=True),
        sa.Column("generation", sa.Integer, primary_key=True),
        sa.Column("document_id", sa.String(200), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        # What chunk_embeddings wrote for the new model: the document's stage shows it once
        # the collection swaps.
        sa.Column("metadata", sa.JSON, nullable=True),
        sa.Column("at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("switch_documents")
    with op.batch_alter_table("collections") as batch:
        batch.drop_column("last_generation")
        batch.drop_column("pending_generation")
        batch.drop_column("pending_model")
        batch.drop_column("generation")
