"""search: a word-pair filter per PostgreSQL entry, so phrases skip most tsvector reads

``search_pairs`` holds a Bloom filter of each entry's consecutive lexeme pairs (see
``app.search.pairs``), kept in its row (``STORAGE MAIN``). Entries written before
this revision have none, which a query treats as "may hold any pair"; the revision
marks their documents as behind, so the indexer's catch-up rebuilds them in the
background. SQLite's FTS5 index reads positions from its own index and needs
nothing.

Revision ID: 0401_search_pairs
Revises: 0400_join_heads
Create Date: 2026-11-26 19:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0401_search_pairs"
down_revision = "0400_join_heads"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_table(
        "search_pairs",
        sa.Column(
            "document_id",
            sa.Integer(),
            sa.ForeignKey(
                "documents.id", ondelete="CASCADE", name="fk_search_pairs_document_id_documents"
            ),
            nullable=False,
        ),
        sa.Column("pairs", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("document_id", name="pk_search_pairs"),
    )
    op.execute("ALTER TABLE search_pairs ALTER COLUMN pairs SET STORAGE MAIN")
    op.execute(
        "UPDATE search_state SET indexed_commit = NULL"
        " WHERE document_id IN (SELECT document_id FROM search_entries)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_table("search_pairs")
