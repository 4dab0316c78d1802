"""The word-pair index: PostgreSQL answers a phrase of two words from an index,
without reading any document's word positions.

PostgreSQL's GIN index over tsvectors knows which documents hold a word, not where,
so a phrase query must read each candidate's whole tsvector (~17 kB for 2,000 words,
out of line) to compare positions: for two common words, a thousand reads a query.
Like a search engine's shingle index (Elasticsearch's ``index_phrases``), entries
therefore also have a GIN index of their consecutive lexeme pairs, and a phrase of
two adjacent words is answered by it alone. Longer phrases, phrases with a stop word
inside and prefix phrases use it to narrow their candidates, which are then checked
against positions.

The keys are computed by one SQL function from the stored tsvector itself: the
lexemes, positions and position limits PostgreSQL's own phrase operator reads, so the
index and the operator agree by construction. It is an expression index, kept by
PostgreSQL with each row whichever release writes it, so it cannot go stale. A key is
the first 64 bits of the MD5 of ``first U+001F second``: two pairs share a key with a
probability of about 2^-64 (and a wrong match would also have to hold both words);
the text of the pairs as keys made the index 44 % larger.

The price is size: at 10,000 documents of 2,000 words the index takes ~270 MB, about
as much as the entries themselves (``docs/BENCHMARKS.md``).
"""

from __future__ import annotations

#: ``search_pair_keys(tsvector)``: the distinct keys of a tsvector's consecutive
#: lexeme pairs (positions p and p + 1). Not inlinable (it has a FROM), so the index
#: expression and the query's are the same function call.
KEYS_FUNCTION = """
CREATE OR REPLACE FUNCTION search_pair_keys(v tsvector) RETURNS bigint[]
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

#: Written through (``fastupdate = off``): a pending list would be read by every
#: query until it is merged, and an entry adds ~2,000 keys; the indexer writes off the
#: request path and can afford the direct insert.
KEYS_INDEX = (
    "CREATE INDEX IF NOT EXISTS ix_search_entries_pairs ON search_entries"
    " USING gin (search_pair_keys(tsv)) WITH (fastupdate = off)"
)

#: A phrase's keys, and whether they answer it exactly: its tsvector holds exactly two
#: positions, side by side (one pair; a stop word, a second lexeme at one position or
#: a third word leave the phrase to be checked against positions).
PHRASE_KEYS = """
SELECT t.n, search_pair_keys(v) AS keys,
       (SELECT count(*) = 2 AND max(p) - min(p) = 1
        FROM unnest(v) AS u, unnest(u.positions) AS p) AS exact
FROM unnest(CAST(:texts AS text[])) WITH ORDINALITY AS t(txt, n),
     to_tsvector(CAST(:lang AS regconfig), t.txt) AS v
"""
