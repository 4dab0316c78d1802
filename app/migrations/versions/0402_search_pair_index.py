"""search: an index of word pairs answers phrases (the 0401 filters are no longer read)

A GIN expression index over ``search_pair_keys(tsv)`` (the keys of each entry's
consecutive lexeme pairs, see ``app.search.pairs``) takes over from 0401's Bloom
filters: a phrase of two words is answered by the index without reading any tsvector,
and an expression index is kept by PostgreSQL with its row, so nothing can leave it
stale. Building it reads every entry (about 8 ms a 2,000-word document); meanwhile
the indexer's writes to ``search_entries`` wait, searches do not.

``search_pairs`` and its trigger stay: the previous release, running during the
deploy or again after a rollback, still writes and reads its filters, and the
trigger still drops any filter this release's writes make stale. A later release
drops them.

Revision ID: 0402_search_pair_index
Revises: 0401_search_pairs
Create Date: 2026-11-26 23:10:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0402_search_pair_index"
down_revision = "0401_search_pairs"
branch_labels = None
depends_on = None

# Frozen here as this revision wrote them (``app.search.pairs`` holds the current ones).
KEYS_FUNCTION = """CREATE OR REPLACE FUNCTION search_pair_keys(v tsvector) RETURNS bigint[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    WITH words AS (
        SELECT u.lexeme, p.position
        FROM unnest(v) AS u, unnest(u.positions) AS p(position)
    )
    SELECT coalesce(array_agg(DISTINCT (
        'x' || left(md5(convert_to(a.lexeme || chr(31) || b.lexeme, 'UTF8')), 16)
    )::bit(64)::bigint), '{}')
    FROM words AS a JOIN words AS b ON b.position = a.position + 1
$$
"""
KEYS_INDEX = (
    "CREATE INDEX IF NOT EXISTS ix_search_entries_pairs ON search_entries"
    " USING gin (search_pair_keys(tsv)) WITH (fastupdate = off)"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(KEYS_FUNCTION)
    op.execute(KEYS_INDEX)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_search_entries_pairs")
    op.execute("DROP FUNCTION IF EXISTS search_pair_keys(tsvector)")
