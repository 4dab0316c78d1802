"""search: indexing state per document, the title's own tsvector, prefix indexes

``search_state`` records, per document, the commit its index entry was built from,
whether the background indexer still has to (re)index it, and the outline (file and
heading by body offset). PostgreSQL's ``search_entries`` gains ``title_tsv`` so that
"the title matches" is a cheap ranking key. SQLite's FTS5 table is rebuilt with
prefix indexes (2, 3 and 4 characters), without which ``colla*`` reads every term
with that prefix; its rows are copied over. Entries built before this revision have
no state row: the indexer's catch-up finds them behind and rebuilds them.

Revision ID: 0105_search_more
Revises: 0104_search
Create Date: 2026-11-26 16:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0105_search_more"
down_revision = "0104_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_state",
        sa.Column(
            "document_id",
            sa.Integer(),
            sa.ForeignKey(
                "documents.id",
                ondelete="CASCADE",
                name="fk_search_state_document_id_documents",
            ),
            nullable=False,
        ),
        sa.Column("indexed_commit", sa.String(64), nullable=True),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("queue_seq", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("outline", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("document_id", name="pk_search_state"),
    )
    op.create_index("ix_search_state_queued_at", "search_state", ["queued_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.add_column("search_entries", sa.Column("title_tsv", postgresql.TSVECTOR()))
        return
    _rebuild_fts("prefix = '2 3 4', ")


def _rebuild_fts(options: str) -> None:
    op.execute("ALTER TABLE search_entries RENAME TO search_entries_old")
    op.execute(
        "CREATE VIRTUAL TABLE search_entries USING fts5("
        f"title, body, {options}tokenize = 'porter unicode61')"
    )
    op.execute(
        "INSERT INTO search_entries (rowid, title, body)"
        " SELECT rowid, title, body FROM search_entries_old"
    )
    op.execute("DROP TABLE search_entries_old")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_column("search_entries", "title_tsv")
    else:
        _rebuild_fts("")
    op.drop_index("ix_search_state_queued_at", table_name="search_state")
    op.drop_table("search_state")
