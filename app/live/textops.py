"""Text arithmetic for live rooms: diffs applied to a ``Y.Text``, prose merges, summaries.

Why not replace the text: replacing a ``Y.Text`` deletes every editor's characters
and inserts new ones, which moves every cursor and duplicates text that a client
types concurrently. Applying only the difference keeps both intact.

Indices: pycrdt's ``Text`` counts UTF-8 bytes, so character positions are turned
into byte offsets before any edit.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from difflib import SequenceMatcher

from merge3 import Merge3
from pycrdt import Text

_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")
_WORD = re.compile(r"\w+")
#: Character-level refinement of a changed hunk is skipped above this size (cost).
_CHAR_DIFF_LIMIT = 20_000


@dataclass(frozen=True)
class Edit:
    """Replace ``old[start:end]`` (character indices) with ``text``."""

    start: int
    end: int
    text: str


def edits(old: str, new: str) -> list[Edit]:
    """The changes turning ``old`` into ``new``: lines first, characters inside hunks.

    Diffing lines first keeps the cost proportional to what changed (NOTES: difflib
    over a whole 126 KB document takes seconds).
    """
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    starts = [0]
    for line in a:
        starts.append(starts[-1] + len(line))
    out: list[Edit] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        base = starts[i1]
        old_seg, new_seg = "".join(a[i1:i2]), "".join(b[j1:j2])
        if old_seg and new_seg and len(old_seg) + len(new_seg) <= _CHAR_DIFF_LIMIT:
            matcher = SequenceMatcher(None, old_seg, new_seg, autojunk=False)
            for ctag, c1, c2, d1, d2 in matcher.get_opcodes():
                if ctag != "equal":
                    out.append(Edit(base + c1, base + c2, new_seg[d1:d2]))
        else:
            out.append(Edit(base, base + len(old_seg), new_seg))
    return out


def apply_edits(ytext: Text, old: str, changes: list[Edit]) -> None:
    """Apply ``changes`` (computed against ``old`` == str(ytext)) inside the caller's transaction."""
    for edit in reversed(changes):  # back to front: earlier offsets stay valid
        start = len(old[: edit.start].encode())
        end = start + len(old[edit.start : edit.end].encode())
        if end > start:
            del ytext[start:end]
        if edit.text:
            ytext.insert(start, edit.text)


def word_counts(old: str, new: str) -> tuple[int, int]:
    """Words added and removed, as the difference of the two texts' word counts.

    Linear in the text: the summary is computed on the event loop at every commit,
    and a character diff of a busy room's batch stalled every editor for seconds.
    A word moved elsewhere counts as neither added nor removed.
    """
    before, after = Counter(_WORD.findall(old)), Counter(_WORD.findall(new))
    return sum((after - before).values()), sum((before - after).values())


def summary(old: str, new: str) -> str:
    """A commit subject such as ``Live edit: +12 −3 words``."""
    added, removed = word_counts(old, new)
    if not added and not removed:
        return "Live edit: whitespace and punctuation"
    return f"Live edit: +{added} −{removed} words"


@dataclass(frozen=True)
class Merged:
    text: str
    #: Places where both sides changed the same words; both versions were kept.
    conflicts: int


def _keep_both(ours: str, theirs: str) -> str:
    if not ours:
        return theirs
    if not theirs:
        return ours
    gap = "" if ours[-1].isspace() or theirs[0].isspace() else " "
    return ours + gap + theirs


def merge(base: str, ours: str, theirs: str) -> Merged:
    """Three-way merge of prose: lines first, then words inside conflicting hunks.

    Where both sides changed the same words, both versions are kept (ours first):
    nothing typed live and nothing saved outside is lost.
    """
    lines = [s.splitlines(keepends=True) for s in (base, ours, theirs)]
    text, conflicts = _merge3(*lines, on_conflict=_merge_words)
    return Merged(text, conflicts)


def _merge_words(base: str, ours: str, theirs: str) -> tuple[str, int]:
    words = [_TOKEN.findall(s) for s in (base, ours, theirs)]
    return _merge3(*words, on_conflict=lambda _base, o, t: (_keep_both(o, t), 1))


def _merge3(
    a: list[str],
    b: list[str],
    c: list[str],
    *,
    on_conflict: Callable[[str, str, str], tuple[str, int]],
) -> tuple[str, int]:
    """Merge token lists ``b`` (ours) and ``c`` (theirs) from base ``a``.

    Clean regions are taken as merge3 decides; each conflicting region is joined back to
    text and handed to ``on_conflict``, which returns its text and how many conflicts
    it kept. Returns the merged text and the conflict count.
    """
    out: list[str] = []
    conflicts = 0
    for region in Merge3(a, b, c).merge_regions():
        kind = region[0]
        if kind == "unchanged":
            out.extend(a[region[1] : region[2]])
        elif kind in ("a", "same"):
            out.extend(b[region[1] : region[2]])
        elif kind == "b":
            out.extend(c[region[1] : region[2]])
        else:
            _, z1, z2, o1, o2, t1, t2 = region
            text, n = on_conflict("".join(a[z1:z2]), "".join(b[o1:o2]), "".join(c[t1:t2]))
            out.append(text)
            conflicts += n
    return "".join(out), conflicts
