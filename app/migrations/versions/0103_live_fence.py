"""live editing: fencing token on checkpoints

A checkpoint records the fencing token of the lock holder that wrote it; a write
with a lower token (a holder whose lock expired) is refused.

Revision ID: 0103_live_fence
Revises: 0102_indexes
Create Date: 2026-11-26 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0103_live_fence"
down_revision = "0102_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("live_checkpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fence", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("live_checkpoints", schema=None) as batch_op:
        batch_op.drop_column("fence")
