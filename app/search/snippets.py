"""Snippets and hit locations, computed in Python for the page's documents only.

Both databases can cut snippets (FTS5 ``snippet()``, PostgreSQL ``ts_headline``), but
each re-parses the whole document per hit: on 2,000-word documents that was most of
a query's time. Here a document's body is scanned once with one regular expression
per query term, which is cheap, gives the same result on both backends, and yields
the hit's exact offset, so the outline names the file and heading it sits under.

Matching is approximate where the index stems (``running`` matched ``runs``): a
word matches anything starting with its crude stem. A snippet may therefore mark a
word the index did not count, never miss one the query asked for literally.
"""

from __future__ import annotations

import bisect
import re
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


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def patterns(clauses: list[Clause]) -> list[re.Pattern[str]]:
    """One pattern per positive clause: a word, a prefix, or a phrase's words in order."""
    found = []
    for clause in clauses:
        if clause.negated:
            continue
        parts = []
        for i, word in enumerate(clause.words):
            literal = word if clause.prefix and i == len(clause.words) - 1 else _stem(word)
            parts.append(re.escape(literal) + r"\w*")
        found.append(re.compile(r"(?<!\w)" + r"\W+".join(parts), re.IGNORECASE))
    return found


@dataclass(frozen=True)
class Snippet:
    text: str
    #: Offset of the first hit in the body, or None when only the title matched.
    offset: int | None


def cut(body: str, compiled: list[re.Pattern[str]]) -> Snippet:
    """The window around the first hit, with every hit inside it marked."""
    first = None
    for pattern in compiled:
        match = pattern.search(body)
        if match and (first is None or match.start() < first):
            first = match.start()
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
    spans: list[tuple[int, int]] = []
    for pattern in compiled:
        spans += [(m.start(), m.end()) for m in pattern.finditer(window)]
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
