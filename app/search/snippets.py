"""Snippets and hit locations, computed in Python for the page's documents only.

Both databases can cut snippets (FTS5 ``snippet()``, PostgreSQL ``ts_headline``), but
each re-parses the whole document per hit: on 2,000-word documents that was most of
a query's time. Here a document's body is scanned once with one regular expression
per query term, which is cheap, gives the same result on both backends, and yields
the hit's exact offset, so the outline names the file and heading it sits under.

The patterns run on the lower-cased body and check "at a word start" themselves:
a look-behind or ``re.IGNORECASE`` makes Python's ``re`` try every position, ~50x
slower than a pattern that starts with a literal (measured: 0.7 ms against 15 µs
per 2,000-word body), and that was most of a page's snippet time.

Matching is approximate where the index stems (``running`` matched ``runs``): a
word matches anything starting with its crude stem. A snippet may therefore mark a
word the index did not count, never miss one the query asked for literally.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from app.search.query import Clause

#: Private-use characters mark hits; indexed text never contains them (stripped), so
#: after HTML-escaping they are the only thing turned into markup.
START, STOP = "\ue000", "\ue001"
ELLIPSIS = "…"
BEFORE, WINDOW = 80, 260
_SUFFIXES = ("ational", "ations", "ation", "ings", "ing", "edly", "ed", "ies", "es", "ly", "s")
_SPACE = re.compile(r"\s+")
_WORD_CHAR = re.compile(r"\w")


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def patterns(clauses: list[Clause]) -> list[re.Pattern[str]]:
    """One pattern per positive clause: a word, a prefix, or a phrase's words in order.

    Lower-case and without a word-start test: :func:`_matches` applies it.
    """
    found = []
    for clause in clauses:
        if clause.negated:
            continue
        parts = []
        for i, word in enumerate(clause.words):
            literal = word if clause.prefix and i == len(clause.words) - 1 else _stem(word)
            parts.append(re.escape(literal.lower()) + r"\w*")
        found.append(re.compile(r"\W+".join(parts)))
    return found


def _matches(pattern: re.Pattern[str], text: str, start: int = 0) -> Iterator[re.Match[str]]:
    """``pattern``'s matches in ``text`` that begin a word, leftmost first."""
    at = start
    while (match := pattern.search(text, at)) is not None:
        begin = match.start()
        if begin > 0 and _WORD_CHAR.match(text, begin - 1):
            at = begin + 1  # inside a word; a real start may still lie within the match
            continue
        yield match
        at = max(match.end(), begin + 1)


def _lowered(body: str) -> str:
    """``body`` lower-cased, or case-folded one character at a time where lowering
    would change its length (offsets must stay those of ``body``)."""
    lowered = body.lower()
    if len(lowered) == len(body):
        return lowered
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in body)


@dataclass(frozen=True)
class Snippet:
    text: str
    #: Offset of the first hit in the body, or None when only the title matched.
    offset: int | None


def cut(body: str, compiled: list[re.Pattern[str]], *, whole: bool = True) -> Snippet | None:
    """The window around the first hit, with every hit inside it marked.

    ``whole=False`` says ``body`` is only the start of the text: the snippet is then
    returned only if it lies wholly inside that start (the same snippet the whole
    text gives), and None says the whole text is needed.
    """
    lowered = _lowered(body)
    first = None
    for pattern in compiled:
        match = next(_matches(pattern, lowered), None)
        if match and (first is None or match.start() < first):
            first = match.start()
    if not whole and (first is None or max(0, first - BEFORE) + WINDOW >= len(body)):
        return None
    if first is None:
        text = _SPACE.sub(" ", body[:WINDOW]).strip()
        return Snippet(text + (ELLIPSIS if len(body) > WINDOW else ""), None)
    start = max(0, first - BEFORE)
    if start:
        space = body.find(" ", start, first)
        start = space + 1 if space != -1 else start
    end = min(len(body), start + WINDOW)
    if end < len(body):
        space = body.rfind(" ", first, end)
        end = space if space > first else end
    window = body[start:end]
    lowered_window = lowered[start:end]
    spans: list[tuple[int, int]] = []
    for pattern in compiled:
        spans += [(m.start(), m.end()) for m in _matches(pattern, lowered_window)]
    marked, at = [], 0
    for a, b in sorted(spans):
        if a < at:
            continue  # overlaps the previous mark
        marked += [window[at:a], START, window[a:b], STOP]
        at = b
    marked.append(window[at:])
    text = _SPACE.sub(" ", "".join(marked)).strip()
    prefix = ELLIPSIS if start > 0 else ""
    suffix = ELLIPSIS if end < len(body) else ""
    return Snippet(prefix + text + suffix, first)


def where(offset: int | None, outline: list[Any]) -> tuple[str | None, str | None]:
    """The file and heading at ``offset`` according to the outline."""
    if offset is None or not outline:
        return None, None
    index = bisect.bisect_right([row[0] for row in outline], offset) - 1
    if index < 0:
        return None, None
    _, path, heading = outline[index]
    return path, heading
