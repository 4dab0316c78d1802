"""Word-pair filters: a small per-document sketch that answers "might these two
words stand side by side here?" without reading the document's tsvector.

PostgreSQL's GIN index knows which documents hold a word, not where, so a phrase
query must read each candidate's whole tsvector (~17 kB for 2,000 words, out of
line) to compare positions; for two common words that is thousands of reads for a
handful of matches. Each entry therefore also keeps a Bloom filter of its
consecutive lexeme pairs (``search_entries.pairs``, ~10 bits a pair, kept in the
row): a phrase's pairs are tested against it first, and only the documents that
pass (every true match, and about 1 % of the rest) have their positions read.

The filter is built from the stored tsvector itself (the lexemes PostgreSQL's own
parser, stemmer and position limits produced), so it can only err on the side of
"maybe": a document it rejects cannot match the phrase. Pairs are hashed with MD5
in SQL when writing and in Python when querying (the same 64 bits); the query
tests bits in SQL with ``get_bit``.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable

#: Bits per pair and hash functions per pair: about 1 % false positives.
BITS_PER_PAIR = 10
HASHES = 4
#: Big enough for ~2,400 pairs at full accuracy. Longer documents fill the filter
#: more (more false positives, never a false negative); the cap keeps the row small
#: enough to stay in its page (``STORAGE MAIN``), which is the point.
MAX_BYTES = 3_072
MIN_BYTES = 8

#: One document's distinct consecutive lexeme pairs, each as the first 64 bits of
#: the MD5 of ``first || U+001F || second`` (UTF-8), from its stored tsvector.
#: Pairing and hashing run in PostgreSQL: in Python they cost twice as much.
ENTRY_PAIR_HASHES = """
WITH words AS (
    SELECT u.lexeme, unnest(u.positions) AS position
    FROM search_entries AS e, unnest(e.tsv) AS u
    WHERE e.document_id = :id
), neighbours AS (
    SELECT DISTINCT a.lexeme || chr(31) || b.lexeme AS pair
    FROM words AS a JOIN words AS b ON b.position = a.position + 1
)
SELECT ('x' || left(md5(convert_to(pair, 'UTF8')), 16))::bit(64)::bigint FROM neighbours
"""


def pair_hash(first: str, second: str) -> int:
    """What :data:`ENTRY_PAIR_HASHES` computes for one pair (a signed 64-bit int)."""
    digest = hashlib.md5(f"{first}\x1f{second}".encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _spread(pair: int) -> tuple[int, ...]:
    """The pair's HASHES bit numbers before reduction modulo the filter's width
    (double hashing: h1 + i * h2)."""
    h1, h2 = pair & 0xFFFFFFFF, (pair >> 32) & 0xFFFFFFFF
    return tuple(h1 + i * h2 for i in range(HASHES))


def build(pairs: Iterable[int]) -> bytes | None:
    """The filter of one document's pair hashes; None when it has no pairs."""
    hashes = list(pairs)
    if not hashes:
        return None
    size = min(MAX_BYTES, max(MIN_BYTES, -(-len(hashes) * BITS_PER_PAIR // 8)))
    bits = bytearray(size)
    width = size * 8
    for pair in hashes:  # _spread, inlined: this loop runs ~2,000 times a document
        h1, h2 = pair & 0xFFFFFFFF, (pair >> 32) & 0xFFFFFFFF
        for i in range(HASHES):
            n = (h1 + i * h2) % width
            bits[n >> 3] |= 1 << (n & 7)  # the bit order of PostgreSQL's get_bit
    return bytes(bits)


def probes(lexemes: Iterable[tuple[str, Iterable[int]]]) -> list[tuple[int, ...]]:
    """The bit numbers to test for one phrase, given ``unnest(to_tsvector(phrase))`` rows.

    Only neighbours with one lexeme each are tested (a stop word leaves a gap, which
    the phrase query allows for: nothing to test there).
    """
    at: dict[int, set[str]] = defaultdict(set)
    for lexeme, positions in lexemes:
        for position in positions or ():
            at[position].add(lexeme)
    found: list[tuple[int, ...]] = []
    for position in sorted(at):
        following = at.get(position + 1)
        if following is None or len(at[position]) != 1 or len(following) != 1:
            continue
        found.append(_spread(pair_hash(next(iter(at[position])), next(iter(following)))))
    return found


def may_hold(data: bytes | None, probes: Iterable[tuple[int, ...]]) -> bool:
    """Python's reading of a filter (what the SQL test computes), for checks and tests."""
    if data is None:
        return True
    width = len(data) * 8
    return all(data[(h % width) >> 3] >> ((h % width) & 7) & 1 for p in probes for h in p)
