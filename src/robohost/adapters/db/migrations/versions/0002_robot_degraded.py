"""A robot may be ``degraded``: running, but its live data have gone stale.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_OLD = "status IN ('idle', 'running', 'halted')"
_NEW = "status IN ('idle', 'running', 'halted', 'degraded')"


def _replace_check(condition: str) -> None:
    with op.batch_alter_table("robot_state", recreate="auto") as batch:
        batch.drop_constraint("ck_robot_state_status", type_="check")
        batch.create_check_constraint("ck_robot_state_status", condition)


def upgrade() -> None:
    """Allow the ``degraded`` status."""
    _replace_check(_NEW)


def downgrade() -> None:
    """Back to idle, running and halted (degraded robots become running)."""
    op.execute("UPDATE robot_state SET status = 'running' WHERE status = 'degraded'")
    _replace_check(_OLD)
