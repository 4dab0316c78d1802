"""join the search, notifications, annotations and analytics branches of the history

Those capabilities were built side by side, each migration following the revision it
needed; this revision joins them, so the history has one head again and the next
migration has one parent. It changes nothing in the schema.

Revision ID: 0400_join_heads
Revises: 0105_search_more, 0202_notifications, 0203_annotations, 0302_experiments
Create Date: 2026-11-26 18:20:00.000000
"""

from __future__ import annotations

revision = "0400_join_heads"
down_revision = ("0105_search_more", "0202_notifications", "0203_annotations", "0302_experiments")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
