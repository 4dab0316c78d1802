"""live editing: journal and checkpoints

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 14:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "live_journal",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("room_key", sa.String(length=400), nullable=False),
        sa.Column("update", sa.LargeBinary(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["users.id"],
            name=op.f("fk_live_journal_actor_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_live_journal")),
    )
    with op.batch_alter_table("live_journal", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_live_journal_room_key"), ["room_key"], unique=False)

    op.create_table(
        "live_checkpoints",
        sa.Column("room_key", sa.String(length=400), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
        sa.Column("base_commit", sa.String(length=40), nullable=False),
        sa.Column("covered_seq", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("room_key", name=op.f("pk_live_checkpoints")),
    )


def downgrade() -> None:
    op.drop_table("live_checkpoints")
    with op.batch_alter_table("live_journal", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_live_journal_room_key"))
    op.drop_table("live_journal")
