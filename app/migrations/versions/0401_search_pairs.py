"""search: a word-pair filter per PostgreSQL entry, so phrases skip most tsvector reads

``search_pairs`` holds a Bloom filter of each entry's consecutive lexeme pairs (see
``app.search.pairs``), kept in its row (``STORAGE MAIN``). A trigger drops an entry's
filter whenever its tsvector is rewritten, so an older release running on this schema
(during a deploy, after a rollback) never leaves a stale filter behind; the writer of
this release rebuilds it right after. Entries without a filter (those written before
this revision) are treated as "may hold any pair"; the revision marks their documents
as behind, so the indexer's catch-up rebuilds them in the background. SQLite's FTS5 index reads positions from its own index and needs
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
    # Any rewrite of an entry's tsvector drops its filter (an older release writing
    # entries during a deploy or after a rollback never leaves a stale one behind).
    op.execute(
        "CREATE OR REPLACE FUNCTION search_pairs_drop() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN DELETE FROM search_pairs WHERE document_id = NEW.document_id;"
        " RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER search_pairs_stale AFTER INSERT OR UPDATE OF tsv ON search_entries"
        " FOR EACH ROW EXECUTE FUNCTION search_pairs_drop()"
    )
    op.execute(
        "UPDATE search_state SET indexed_commit = NULL"
        " WHERE document_id IN (SELECT document_id FROM search_entries)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS search_pairs_stale ON search_entries")
    op.execute("DROP FUNCTION IF EXISTS search_pairs_drop()")
    op.drop_table("search_pairs")
