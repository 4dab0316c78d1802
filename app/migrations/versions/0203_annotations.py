"""annotations: threaded comments on versions (commits) of a document

Revision ID: 0203_annotations
Revises: 0201_merge_requests
Create Date: 2026-11-26 16:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0203_annotations"
down_revision = "0201_merge_requests"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "annotations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "document_id",
            sa.Integer(),
            sa.ForeignKey("documents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("commit_oid", sa.String(40), nullable=False),
        sa.Column(
            "thread_id",
            sa.Integer(),
            sa.ForeignKey("annotations.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column("author_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("edited_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_annotations_document_commit", "annotations", ["document_id", "commit_oid"])
    op.create_index("ix_annotations_thread_id", "annotations", ["thread_id"])
    op.create_index("ix_annotations_author_id", "annotations", ["author_id"])


def downgrade() -> None:
    op.drop_index("ix_annotations_author_id", table_name="annotations")
    op.drop_index("ix_annotations_thread_id", table_name="annotations")
    op.drop_index("ix_annotations_document_commit", table_name="annotations")
    op.drop_table("annotations")
