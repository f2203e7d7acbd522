"""The track record's hash chain: each order and fill line of the journal stores its link.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``journal.hash`` (lines written before this revision have none: their runs are not chained)."""
    with op.batch_alter_table("journal") as batch:
        batch.add_column(sa.Column("hash", sa.Text(), nullable=True))


def downgrade() -> None:
    """Drop ``journal.hash``."""
    with op.batch_alter_table("journal") as batch:
        batch.drop_column("hash")
