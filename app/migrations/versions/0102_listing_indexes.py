"""indexes for the main pages' queries (see app/ops/indexes.py)

Revision ID: 0102_indexes
Revises: 0101_status
Create Date: 2026-11-26 14:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0102_indexes"
down_revision = "0101_status"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_users_username_lower", "users", [sa.text("lower(username)")]),
    ("ix_documents_visibility_updated_at", "documents", ["visibility", "updated_at"]),
    ("ix_documents_visibility_created_at", "documents", ["visibility", "created_at"]),
    ("ix_documents_visibility_title_lower", "documents", ["visibility", sa.text("lower(title)")]),
    ("ix_documents_created_at", "documents", ["created_at"]),
    ("ix_documents_title_lower", "documents", [sa.text("lower(title)")]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
