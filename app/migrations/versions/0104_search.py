"""search: full-text index over documents' default branches

SQLite: an FTS5 virtual table (rowid = document id; title, body; porter stemming).
PostgreSQL: a table with a tsvector (title weighted A, body D) and a GIN index.

Revision ID: 0104_search
Revises: 0103_live_fence
Create Date: 2026-11-26 16:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0104_search"
down_revision = "0103_live_fence"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE search_entries USING fts5("
            "title, body, tokenize = 'porter unicode61')"
        )
        return
    op.create_table(
        "search_entries",
        sa.Column(
            "document_id",
            sa.Integer(),
            sa.ForeignKey("documents.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("tsv", postgresql.TSVECTOR(), nullable=False),
    )
    op.create_index("ix_search_entries_tsv", "search_entries", ["tsv"], postgresql_using="gin")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE search_entries")
        return
    op.drop_index("ix_search_entries_tsv", table_name="search_entries")
    op.drop_table("search_entries")
