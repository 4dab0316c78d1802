"""Three-way merges of prose: text merges that know about sentences and words, and the
value types a merge preview is made of.

Why not stop at Git's line merge: a paragraph of prose is usually one long line, so two
people editing different sentences of the same paragraph conflict in Git (and in every
forge built on it). Here each conflicted line hunk is merged again by words and by
sentences; only changes that really overlap are left for a person to resolve.

Why Git's own line merge first: when Git merges a file cleanly, people expect exactly
Git's result (what ``git merge`` on a clone would give), so the line pass *is* libgit2's
``merge_file`` (the same xdiff code as ``git merge-file``); the finer passes run only
where Git gives up. Those use merge3 (Breezy's three-way merge over any sequence) on
lines, then on word and sentence tokens, aligned by our own shortest diffs: merge3's
default matcher (difflib) pairs repeated spaces and full stops with the wrong ones.

Text merges are pure functions of three texts; the tree merge at the end works on a
repository's objects but never moves a ref.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import pygit2
from merge3 import Merge3
from pygit2.enums import DiffOption, FileMode

__all__ = [
    "ConflictRegion",
    "FileMerge",
    "MergePreview",
    "MergeStyle",
    "Pick",
    "Resolution",
    "merge_text",
    "prose_merge",
]

MergeStyle = Literal["merge", "squash", "ff"]
Pick = Literal["ours", "theirs", "both", "edit"]
_PICKS = ("ours", "theirs", "both", "edit")

#: A finer pass is skipped when a conflicted hunk has more tokens than this (the three
#: texts together), to bound the time one merge takes: about a second per 100,000.
MAX_REFINE_TOKENS = 200_000

_LINE = re.compile(r"[^\n]*\n|[^\n]+")
# A sentence runs to its terminator (plus closing quotes/brackets) when whitespace or the
# end follows, or else to the end of its line. Whitespace between sentences is a token of
# its own, so it anchors the merge between two edited sentences. A wrong split (say after
# "e.g.") only moves where a conflict is cut: every conflicting sentence is retried word
# by word, so the merged text does not depend on it.
_SENTENCE = re.compile(
    r"\s+|\S[^\n]*?(?:[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s|\Z)|(?=[^\S\n]*(?:\n|\Z)))"
)
# Words, runs of whitespace, and single punctuation marks: an edit to one word does not
# touch the next one, however the spaces and the end of the line around them move.
_WORD = re.compile(r"\w+|\s+|[^\w\s]")
_HAS_WORD = re.compile(r"\w")


@dataclass(frozen=True)
class ConflictRegion:
    """A place where both sides changed the same text differently.

    ``ours`` is the target branch's text for the region, ``theirs`` the source branch's,
    ``base`` what both started from. ``index`` counts regions within one file from 0.
    """

    index: int
    base: str
    ours: str
    theirs: str


def _join_both(ours: str, theirs: str) -> str:
    """Ours then theirs, with a separator only where they would otherwise run together."""
    if not ours or not theirs or ours[-1].isspace() or theirs[0].isspace():
        return ours + theirs
    return ours + ("\n" if "\n" in ours else " ") + theirs


@dataclass(frozen=True)
class FileMerge:
    """One file's merge: clean text and conflict regions, in document order."""

    path: str
    chunks: tuple[str | ConflictRegion, ...]

    @property
    def conflicts(self) -> list[ConflictRegion]:
        return [c for c in self.chunks if isinstance(c, ConflictRegion)]

    @property
    def clean(self) -> bool:
        return not any(isinstance(c, ConflictRegion) for c in self.chunks)

    @property
    def text(self) -> str:
        """The merged text; only defined for a clean merge."""
        if not self.clean:
            raise ValueError(f"{self.path or 'text'} still has conflicts")
        return "".join(self.chunks)  # type: ignore[arg-type]

    def resolve(self, picks: Mapping[int, str], edits: Mapping[int, str] | None = None) -> str:
        """The file's text with every conflict region replaced by what was picked for it.

        ``picks[i]`` is "ours", "theirs", "both" (ours then theirs) or "edit" (the text in
        ``edits[i]``). Every region must be picked: a forgotten region is a ValueError
        rather than a silent choice of one side.
        """
        edits = edits or {}
        regions = self.conflicts
        known = {r.index for r in regions}
        unknown = sorted(set(picks) - known, key=str)
        if unknown:
            raise ValueError(f"no conflict region {unknown[0]!r} in {self.path or 'text'}")
        out: list[str] = []
        for chunk in self.chunks:
            if isinstance(chunk, str):
                out.append(chunk)
                continue
            pick = picks.get(chunk.index)
            if pick is None:
                raise ValueError(
                    f"conflict region {chunk.index} in {self.path or 'text'} not picked"
                )
            if pick == "ours":
                out.append(chunk.ours)
            elif pick == "theirs":
                out.append(chunk.theirs)
            elif pick == "both":
                out.append(_join_both(chunk.ours, chunk.theirs))
            elif pick == "edit":
                edited = edits.get(chunk.index)
                if not isinstance(edited, str):
                    raise ValueError(f"conflict region {chunk.index} picked 'edit' without text")
                out.append(edited)
            else:
                raise ValueError(f"pick for region {chunk.index} must be one of {_PICKS}")
        return "".join(out)


@dataclass(frozen=True)
class MergePreview:
    """What merging ``source`` into ``target`` would do, computed without moving any ref.

    ``files`` holds the text files changed on both sides, after the prose-aware merge
    (clean ones too, so a page can say "merged automatically"); ``conflicts`` every path
    that still needs a person: text regions left, binary files, modify/delete, add/add...
    """

    target: str
    source: str
    base: str | None
    up_to_date: bool
    fast_forward: bool
    files: tuple[FileMerge, ...]
    conflicts: tuple[str, ...]

    @property
    def clean(self) -> bool:
        return not self.conflicts

    def file(self, path: str) -> FileMerge | None:
        return next((f for f in self.files if f.path == path), None)


# ---------------------------------------------------------------------- the line pass


class _MemoryBackend(pygit2.OdbBackend):
    """An object database in a dict: lets libgit2 merge three texts with no repository."""

    def __init__(self) -> None:
        super().__init__()
        self.objects: dict[str, tuple[int, bytes]] = {}

    def read_cb(self, oid: pygit2.Oid) -> tuple[int, bytes]:
        return self.objects[str(oid)]

    def read_header_cb(self, oid: pygit2.Oid) -> tuple[int, int]:
        kind, data = self.objects[str(oid)]
        return kind, len(data)

    def exists_cb(self, oid: pygit2.Oid) -> bool:
        return str(oid) in self.objects

    def write_cb(self, oid: pygit2.Oid, data: bytes, kind: int) -> None:
        self.objects[str(oid)] = (kind, bytes(data))

    def refresh_cb(self) -> None:
        pass


class _Scratch(threading.local):
    """One in-memory repository per thread (pygit2 objects are not shared across threads)."""

    repo: pygit2.Repository | None = None
    backend: _MemoryBackend | None = None


_scratch = _Scratch()


def _scratch_repo() -> tuple[pygit2.Repository, _MemoryBackend]:
    if _scratch.repo is None or _scratch.backend is None:
        backend = _MemoryBackend()
        odb = pygit2.Odb()
        odb.add_backend(backend, 1)
        repo = pygit2.Repository()
        repo.set_odb(odb)
        _scratch.repo, _scratch.backend = repo, backend
    return _scratch.repo, _scratch.backend


def git_line_merge(base: str, ours: str, theirs: str) -> str | None:
    """Git's own line merge (libgit2's ``merge_file``): the merged text, or None on conflict.

    Text with a NUL byte is binary to Git (and cannot cross libgit2's C strings intact),
    so it never merges here.
    """
    if "\0" in base or "\0" in ours or "\0" in theirs:
        return None
    repo, backend = _scratch_repo()
    try:
        entries = [
            pygit2.IndexEntry("file", repo.create_blob(text.encode("utf-8")), FileMode.BLOB)
            for text in (base, ours, theirs)
        ]
        result = repo.merge_file_from_index(*entries)
    finally:
        backend.objects.clear()
    return result.contents if result.automergeable else None


# ---------------------------------------------------------------------- the finer passes

#: The in-place diff fills a table of len(a) × len(b) cells (after the common prefix
#: and suffix are cut off); beyond this many it is skipped.
MAX_REPLACEMENT_TABLE = 40_000

_Block = tuple[int, int, int]
_XDIFF_FLAGS = DiffOption.FORCE_TEXT | DiffOption.PATIENCE


def _as_lines(tokens: Sequence[str]) -> bytes:
    """One token per line, escaped so that a token holding a newline stays one line."""
    escaped = (t.replace("\\", "\\\\").replace("\n", "\\n") for t in tokens)
    return "".join(f"{t}\n" for t in escaped).encode("utf-8", "surrogatepass")


def _shortest_pairs(a: Sequence[str], b: Sequence[str]) -> list[tuple[int, int]]:
    """Matched index pairs of Git's diff of two token lists (libgit2's xdiff, Myers).

    It runs in C: a pure Python Myers took seconds on a document whose every paragraph
    one side had rewrapped. Like Git, xdiff may skip a match to stay fast (a token
    repeated many times amid changes), so the result is short rather than shortest;
    _replacement_pairs is exact where it is affordable.
    """
    if not a or not b:
        return []
    patch = pygit2.Patch.create_from(_as_lines(a), _as_lines(b), context_lines=0, flag=_XDIFF_FLAGS)
    pairs: list[tuple[int, int]] = []
    x = y = 0
    for hunk in patch.hunks:
        # xdiff numbers lines from 1; an empty side names the line it follows.
        a1 = hunk.old_start if hunk.old_lines == 0 else hunk.old_start - 1
        b1 = hunk.new_start if hunk.new_lines == 0 else hunk.new_start - 1
        pairs.extend((x + k, y + k) for k in range(a1 - x))
        x, y = a1 + hunk.old_lines, b1 + hunk.new_lines
    pairs.extend((x + k, y + k) for k in range(len(a) - x))
    return pairs


def _blocks(pairs: list[tuple[int, int]], n: int, m: int) -> list[_Block]:
    """Matched pairs as difflib-style blocks, ending with the (n, m, 0) sentinel."""
    out: list[_Block] = []
    for x, y in pairs:
        if out and out[-1][0] + out[-1][2] == x and out[-1][1] + out[-1][2] == y:
            out[-1] = (out[-1][0], out[-1][1], out[-1][2] + 1)
        else:
            out.append((x, y, 1))
    out.append((n, m, 0))
    return out


def _replacement_pairs(a: Sequence[str], b: Sequence[str]) -> list[tuple[int, int]] | None:
    """Matched pairs of a shortest edit script that, among all shortest ones, replaces
    the most tokens in place (fewest insertions and deletions left over), or None when
    ``a`` and ``b`` are too long for this quadratic table.

    Costs are compared as (unmatched tokens, edits counting a replacement once), packed
    into one integer so the table holds plain ints.
    """
    n, m = len(a), len(b)
    if n * m > MAX_REPLACEMENT_TABLE:
        return None
    big = n + m + 1
    indel, replace = big + 1, 2 * big + 1
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for j in range(m + 1):
        table[0][j] = j * indel
    for i in range(1, n + 1):
        row, above, token = table[i], table[i - 1], a[i - 1]
        row[0] = i * indel
        for j in range(1, m + 1):
            diagonal = above[j - 1] + (0 if token == b[j - 1] else replace)
            row[j] = min(diagonal, above[j] + indel, row[j - 1] + indel)
    pairs: list[tuple[int, int]] = []
    i, j = n, m
    while i > 0 and j > 0:
        here = table[i][j]
        if a[i - 1] == b[j - 1] and here == table[i - 1][j - 1]:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif here == table[i - 1][j - 1] + replace:
            i, j = i - 1, j - 1
        elif here == table[i - 1][j] + indel:
            i -= 1
        else:
            j -= 1
    pairs.reverse()
    return pairs


def token_diff(
    a: Sequence[str], b: Sequence[str], *, from_end: bool = False, in_place: bool = False
) -> list[_Block] | None:
    """Matching blocks of a short edit script from ``a`` to ``b``.

    A short script (what Git's diff computes) keeps unchanged words matched where
    difflib's longest-block-first heuristic can pair a repeated "the" with the wrong
    one. ``from_end`` diffs the reversed sequences, so an ambiguous insertion or
    deletion in a run of repeated tokens lands at the other end of the run.
    ``in_place`` picks, among shortest scripts, one that replaces tokens where they
    stand (see _replacement_pairs), and gives None when that table would be too big.
    """
    n, m = len(a), len(b)
    if from_end:
        a, b = a[::-1], b[::-1]
    head = 0
    while head < n and head < m and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < n - head and tail < m - head and a[n - 1 - tail] == b[m - 1 - tail]:
        tail += 1
    middle_a, middle_b = a[head : n - tail], b[head : m - tail]
    if in_place:
        found = _replacement_pairs(middle_a, middle_b)
        if found is None:
            return None  # too big: the caller has the plain diffs already
        middle = found
    else:
        middle = _shortest_pairs(middle_a, middle_b)
    pairs = [(i, i) for i in range(head)]
    pairs += [(x + head, y + head) for x, y in middle]
    pairs += [(n - tail + i, m - tail + i) for i in range(tail)]
    if from_end:
        pairs = [(n - 1 - x, m - 1 - y) for x, y in reversed(pairs)]
    return _blocks(pairs, n, m)


class _Matched:
    """What merge3 asks of a sequence matcher: precomputed matching blocks."""

    def __init__(self, blocks: list[_Block]) -> None:
        self.blocks = blocks

    def get_matching_blocks(self) -> list[_Block]:
        return self.blocks


_Chunk = str | tuple[str, str, str]  # clean text, or (base, ours, theirs) still conflicting


def _regions(
    base: list[str],
    ours: list[str],
    theirs: list[str],
    ours_blocks: list[_Block],
    theirs_blocks: list[_Block],
) -> list[_Chunk]:
    """merge3 over token lists with the given alignments: clean text and conflicts."""

    def matcher(_junk: object, _base: Sequence[str], side: Sequence[str]) -> _Matched:
        return _Matched(ours_blocks if side is ours else theirs_blocks)

    out: list[_Chunk] = []
    for region in Merge3(base, ours, theirs, sequence_matcher=matcher).merge_regions():  # type: ignore[arg-type]
        kind = region[0]
        if kind == "unchanged":
            out.append("".join(base[region[1] : region[2]]))
        elif kind in ("a", "same"):
            out.append("".join(ours[region[1] : region[2]]))
        elif kind == "b":
            out.append("".join(theirs[region[1] : region[2]]))
        else:
            _, z1, z2, o1, o2, t1, t2 = region
            out.append(("".join(base[z1:z2]), "".join(ours[o1:o2]), "".join(theirs[t1:t2])))
    return out


def _all_clean(chunks: list[_Chunk]) -> bool:
    return all(isinstance(c, str) for c in chunks)


def _merge_tokens(
    base: list[str], ours: list[str], theirs: list[str], *, strict: bool, anchored: bool
) -> list[_Chunk]:
    """merge3 over token lists, trying the placements of ambiguous edits.

    In a run of repeated tokens an edit has several equally short placements: deleting
    one "the" of five can be aligned with any of them. One placement may touch the
    other side's edit where another does not, so each side is diffed from the start
    and from the end, and an insertion or deletion that touches the other side's edit
    is slid along its run until it no longer does.

    Placements can also merge cleanly into different texts. ``strict`` (coarse passes,
    followed by a finer one) then gives up with one conflict, so the finer pass decides;
    otherwise the first clean outcome wins (forward diffs first). With no clean outcome
    the forward placement's conflicts stand.
    """
    outcomes: list[list[_Chunk]] = []
    for o in _placements(base, ours, anchored=anchored):
        for t in _placements(base, theirs, anchored=anchored):
            first = _regions(base, ours, theirs, o, t)
            outcomes.append(first)
            if not _all_clean(first):
                o_slid = _slide_apart(o, base, ours, _hunks(t))
                t_slid = _slide_apart(t, base, theirs, _hunks(o_slid))
                if (o_slid, t_slid) != (o, t):
                    outcomes.append(_regions(base, ours, theirs, o_slid, t_slid))
    clean = [chunks for chunks in outcomes if _all_clean(chunks)]
    if not clean:
        return outcomes[0]
    if not strict or len({"".join(c) for c in clean}) == 1:  # type: ignore[arg-type]
        return clean[0]
    return _whole_conflict(base, ours, theirs)


_Hunk = tuple[int, int, int, int]  # base[a1:a2] became side[b1:b2]


def _hunks(blocks: list[_Block]) -> list[_Hunk]:
    out: list[_Hunk] = []
    x = y = 0
    for bx, by, size in blocks:
        if bx > x or by > y:
            out.append((x, bx, y, by))
        x, y = bx + size, by + size
    return out


def _blocks_of(hunks: list[_Hunk], n: int, m: int) -> list[_Block]:
    out: list[_Block] = []
    x = y = 0
    for a1, a2, _b1, b2 in hunks:
        if a1 > x:
            out.append((x, y, a1 - x))
        x, y = a2, b2
    if n > x:
        out.append((x, y, n - x))
    out.append((n, m, 0))
    return out


def _touches(h: _Hunk, others: list[_Hunk]) -> bool:
    """merge3 needs an unchanged token between two sides' edits, or they conflict."""
    return any(h[0] <= o[1] and o[0] <= h[1] for o in others)


def _positions(hunk: _Hunk, base: list[str], side: list[str], low: int, high: int) -> list[_Hunk]:
    """Where a pure insertion or deletion can slide within the unchanged run around it."""
    a1, a2, b1, b2 = hunk
    seq, lo, hi = (base, a1, a2) if b1 == b2 else (side, b1, b2)
    if (a1 == a2) == (b1 == b2):
        return []  # a replacement, or nothing: it stays where it is
    found: list[tuple[int, _Hunk]] = []
    shift = 0
    while a1 + shift - 1 >= low and seq[lo + shift - 1] == seq[hi + shift - 1]:
        shift -= 1
        found.append((-shift, (a1 + shift, a2 + shift, b1 + shift, b2 + shift)))
    shift = 0
    while a2 + shift < high and hi + shift < len(seq) and seq[hi + shift] == seq[lo + shift]:
        shift += 1
        found.append((shift, (a1 + shift, a2 + shift, b1 + shift, b2 + shift)))
    return [h for _, h in sorted(found, key=lambda pair: pair[0])]


def _slide_apart(
    blocks: list[_Block], base: list[str], side: list[str], others: list[_Hunk]
) -> list[_Block]:
    """Move this side's insertions and deletions off the other side's edits where they can."""
    hunks = _hunks(blocks)
    for k, hunk in enumerate(hunks):
        if not _touches(hunk, others):
            continue
        low = hunks[k - 1][1] if k else 0
        high = hunks[k + 1][0] if k + 1 < len(hunks) else len(base)
        for moved in _positions(hunk, base, side, low, high):
            if not _touches(moved, others):
                hunks[k] = moved
                break
    return _blocks_of(hunks, len(base), len(side))


def _cost(blocks: list[_Block]) -> tuple[int, int]:
    """Tokens left unmatched, then edits counting a replaced token once: the smaller, the
    closer the diff is to what the writer did."""
    unmatched = blocks[-1][0] + blocks[-1][1] - 2 * sum(size for _, _, size in blocks)
    edits, x, y = 0, 0, 0
    for bx, by, size in blocks:
        edits += max(bx - x, by - y)
        x, y = bx + size, by + size
    return unmatched, edits


def _is_anchor(token: str) -> bool:
    """Words (and sentences) anchor a diff; spaces and punctuation only follow them."""
    return _HAS_WORD.search(token) is not None


def anchored_diff(
    a: Sequence[str], b: Sequence[str], *, from_end: bool = False, in_place: bool = False
) -> list[_Block] | None:
    """token_diff over words only; spaces and punctuation follow the words around them.

    Spaces and full stops are the most frequent tokens, so a diff that may match them
    freely pairs the full stop after one word with the one after another, ties with
    the alignment that keeps the words, and drags edits to the wrong place. Here a
    space or punctuation mark matches only as the continuation of a matched word's
    neighbourhood (right after or right before it), or at the very start or end.
    """
    ia = [i for i, t in enumerate(a) if _is_anchor(t)]
    ib = [j for j, t in enumerate(b) if _is_anchor(t)]
    blocks = token_diff(
        [a[i] for i in ia], [b[j] for j in ib], from_end=from_end, in_place=in_place
    )
    if blocks is None:
        return None
    partner: dict[int, int] = {}
    for x, y, size in blocks:
        for k in range(size):
            partner[ia[x + k]] = ib[y + k]
    taken = set(partner.values())

    def pair(i: int, j: int) -> None:
        free = i not in partner and j not in taken and 0 <= j < len(b)
        if free and a[i] == b[j] and not _is_anchor(a[i]):
            partner[i] = j
            taken.add(j)

    if a and b:
        pair(0, 0)
        pair(len(a) - 1, len(b) - 1)
    for i in range(1, len(a)):  # runs continuing after a match
        if i - 1 in partner:
            pair(i, partner[i - 1] + 1)
    for i in range(len(a) - 2, -1, -1):  # and runs leading up to one
        if i + 1 in partner:
            pair(i, partner[i + 1] - 1)
    pairs: list[tuple[int, int]] = []
    for i in sorted(partner):
        if not pairs or partner[i] > pairs[-1][1]:  # keep the pairs in order on both sides
            pairs.append((i, partner[i]))
    return _blocks(pairs, len(a), len(b))


def _placements(base: list[str], side: list[str], *, anchored: bool) -> list[list[_Block]]:
    """The distinct cheapest of several diffs of ``base`` → ``side`` (see _cost).

    Of two equally short diffs, the one that pairs more deletions with insertions
    (replacing "the." by "ours" in place rather than inserting "ours" at the start and
    deleting a "the." further on) is what a writer meant.
    """
    # Lines are compared whole: when every paragraph changed, the blank lines between
    # them are what keeps one paragraph's hunk apart from the next.
    differ = anchored_diff if anchored else token_diff
    found = [
        differ(base, side),
        differ(base, side, from_end=True),
        differ(base, side, in_place=True),
    ]
    candidates = [blocks for blocks in found if blocks is not None]
    best = min(_cost(c) for c in candidates)
    out: list[list[_Block]] = []
    for blocks in candidates:
        if _cost(blocks) == best and blocks not in out:
            out.append(blocks)
    return out


def _whole_conflict(base: list[str], ours: list[str], theirs: list[str]) -> list[_Chunk]:
    """One conflict for the part of the hunk where the three token lists differ."""
    head = 0
    while (
        head < min(len(base), len(ours), len(theirs)) and base[head] == ours[head] == theirs[head]
    ):
        head += 1
    tail = 0
    while (
        tail < min(len(base), len(ours), len(theirs)) - head
        and base[-1 - tail] == ours[-1 - tail] == theirs[-1 - tail]
    ):
        tail += 1

    def middle(tokens: list[str]) -> str:
        return "".join(tokens[head : len(tokens) - tail])

    return [
        "".join(base[:head]),
        (middle(base), middle(ours), middle(theirs)),
        "".join(base[len(base) - tail :]),
    ]


def _lines(text: str) -> list[str]:
    return _LINE.findall(text)


def _sentences(text: str) -> list[str]:
    return _SENTENCE.findall(text)


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _trivial(base: str, ours: str, theirs: str) -> list[_Chunk] | None:
    if ours == theirs or base == theirs:
        return [ours]
    if base == ours:
        return [theirs]
    return None


def _merge_split(
    base: str, ours: str, theirs: str, split: Callable[[str], list[str]], *, strict: bool
) -> list[_Chunk]:
    tokens = split(base), split(ours), split(theirs)
    if sum(len(t) for t in tokens) > MAX_REFINE_TOKENS:
        return [(base, ours, theirs)]
    return _merge_tokens(*tokens, strict=strict, anchored=split is not _lines)


def _merge_prose(base: str, ours: str, theirs: str) -> list[_Chunk]:
    """One conflicted line hunk, merged by words and by sentences.

    A clean word merge wins: it is the finest and anchors on words, while sentence
    tokens shift when an edit adds or drops a full stop (two sentences become one and
    pair with the wrong neighbour). A clean sentence merge is used when the word merge
    conflicts: whole unchanged sentences are anchors that a heavily rewritten hunk's
    words may lack. Otherwise the word merge's conflicts, the smallest, are shown.
    """
    trivial = _trivial(base, ours, theirs)
    if trivial is not None:
        return trivial
    by_word = _merge_split(base, ours, theirs, _words, strict=False)
    if _all_clean(by_word):
        return by_word
    by_sentence = _merge_split(base, ours, theirs, _sentences, strict=True)
    return by_sentence if _all_clean(by_sentence) else by_word


def _merge_lines(base: str, ours: str, theirs: str) -> list[_Chunk]:
    """merge3 by lines; each conflicted hunk is merged again as prose."""
    trivial = _trivial(base, ours, theirs)
    if trivial is not None:
        return trivial
    out: list[_Chunk] = []
    # Not strict: Git already gave up on this text, and every conflict left here is
    # merged again by words; a run of blank lines is the usual ambiguity, and where a
    # blank line went changes nothing.
    for chunk in _merge_split(base, ours, theirs, _lines, strict=False):
        out.extend([chunk] if isinstance(chunk, str) else _merge_prose(*chunk))
    return out


def _file_merge(path: str, pieces: list[_Chunk]) -> FileMerge:
    """Join neighbouring clean pieces and number the conflicts."""
    chunks: list[str | ConflictRegion] = []
    for piece in pieces:
        if isinstance(piece, str):
            if not piece:
                continue
            if chunks and isinstance(chunks[-1], str):
                chunks[-1] += piece
            else:
                chunks.append(piece)
        else:
            index = sum(isinstance(c, ConflictRegion) for c in chunks)
            chunks.append(ConflictRegion(index, *piece))
    return FileMerge(path=path, chunks=tuple(chunks))


def prose_merge(base: str, ours: str, theirs: str, *, path: str = "") -> FileMerge:
    """The finer passes alone: lines (merge3), then sentences, then words.

    For callers that already know Git's line merge conflicts (a tree merge has tried it),
    so it is not run twice.
    """
    return _file_merge(path, _merge_lines(base, ours, theirs))


def merge_text(base: str, ours: str, theirs: str, *, path: str = "") -> FileMerge:
    """Three-way merge of one text: Git's line merge, then sentences, then words.

    When Git's line merge is clean the result is exactly Git's. Otherwise the text is
    merged again with merge3 by lines, each conflicted hunk by sentences, and each
    conflicted sentence run by words; only overlapping changes stay conflicts. Text is
    never dropped: a conflict region keeps both sides.
    """
    if ours == theirs or base == theirs:
        return _file_merge(path, [ours])
    if base == ours:
        return _file_merge(path, [theirs])
    merged = git_line_merge(base, ours, theirs)
    if merged is not None:
        return _file_merge(path, [merged])
    return prose_merge(base, ours, theirs, path=path)


# ---------------------------------------------------------------------- tree merges

_TEXT_MODES = (FileMode.BLOB, FileMode.BLOB_EXECUTABLE)
Resolution = str | bytes | None


def _is_binary(data: bytes) -> bool:
    """Git's heuristic (a NUL in the first 8000 bytes), plus text that is not UTF-8."""
    if b"\0" in data[:8000]:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@dataclass(frozen=True)
class TreeConflict:
    """A path a tree merge could not settle; ``file`` is set for a text conflict."""

    path: str
    base: pygit2.IndexEntry | None
    ours: pygit2.IndexEntry | None
    theirs: pygit2.IndexEntry | None
    file: FileMerge | None

    @property
    def paths(self) -> set[str]:
        return {e.path for e in (self.base, self.ours, self.theirs) if e is not None}

    @property
    def mode(self) -> int:
        """The merged file's mode: like Git, a side that changed the mode wins."""
        base, ours, theirs = self.base, self.ours, self.theirs
        changed_by_theirs = (
            base is not None and ours is not None and theirs is not None and ours.mode == base.mode
        )
        if changed_by_theirs and theirs.mode in _TEXT_MODES:  # type: ignore[union-attr]
            return int(theirs.mode)  # type: ignore[union-attr]
        for entry in (ours, theirs, base):
            if entry is not None and entry.mode in _TEXT_MODES:
                return int(entry.mode)
        return int(FileMode.BLOB)


@dataclass
class TreeMerge:
    """libgit2's tree merge with prose-aware retries applied to its index.

    ``index`` holds every clean result (including files the finer passes settled);
    ``conflicts`` what is left, keyed by path.
    """

    index: pygit2.Index
    files: tuple[FileMerge, ...]
    conflicts: dict[str, TreeConflict]


def _blob(repo: pygit2.Repository, entry: pygit2.IndexEntry | None) -> bytes | None:
    return None if entry is None else repo[entry.id].data  # type: ignore[union-attr]


def _changed_paths(old: pygit2.Tree, new: pygit2.Tree) -> set[str]:
    out: set[str] = set()
    for patch in old.diff_to_tree(new):
        delta = patch.delta
        out.update(p for p in (delta.old_file.path, delta.new_file.path) if p)
    return out


def _set_entry(
    repo: pygit2.Repository, index: pygit2.Index, conflict: TreeConflict, data: bytes | None
) -> None:
    """Replace a conflict in ``index`` by a file holding ``data`` (None: no file at all)."""
    for path in conflict.paths:
        # Already gone when another path of the same conflict was removed.
        with contextlib.suppress(KeyError, TypeError):
            del index.conflicts[path]  # type: ignore[union-attr]
    if data is None:
        if conflict.path in index:
            index.remove(conflict.path)
        return
    index.add(pygit2.IndexEntry(conflict.path, repo.create_blob(data), conflict.mode))


def merge_trees(
    repo: pygit2.Repository, base: pygit2.Tree, ours: pygit2.Tree, theirs: pygit2.Tree
) -> TreeMerge:
    """Merge ``theirs`` into ``ours`` from ``base``, retrying text conflicts with prose_merge."""
    index = repo.merge_trees(base, ours, theirs)
    both = _changed_paths(base, ours) & _changed_paths(base, theirs)
    conflicts: dict[str, TreeConflict] = {}
    files: dict[str, FileMerge] = {}
    for b, o, t in list(index.conflicts or ()):
        path = next(e.path for e in (o, t, b) if e is not None)
        file = None
        texts = [_blob(repo, e) for e in (b, o, t)]
        if (
            o is not None
            and t is not None
            and o.path == t.path
            and o.mode in _TEXT_MODES
            and t.mode in _TEXT_MODES
            and (b is None or b.mode in _TEXT_MODES)
            and not any(_is_binary(x) for x in texts if x is not None)
        ):
            base_text, ours_text, theirs_text = (
                "" if x is None else x.decode("utf-8") for x in texts
            )
            file = prose_merge(base_text, ours_text, theirs_text, path=path)
            files[path] = file
        conflict = TreeConflict(path, b, o, t, file)
        if file is not None and file.clean:
            _set_entry(repo, index, conflict, file.text.encode("utf-8"))
        else:
            conflicts[path] = conflict
    for path in sorted(both - set(files) - set(conflicts)):
        if path not in index:
            continue
        data = repo[index[path].id].data  # type: ignore[union-attr]
        if not _is_binary(data):
            files[path] = FileMerge(path, (data.decode("utf-8"),) if data else ())
    return TreeMerge(
        index=index,
        files=tuple(files[p] for p in sorted(files)),
        conflicts=dict(sorted(conflicts.items())),
    )


def resolve_tree(
    repo: pygit2.Repository, merge: TreeMerge, resolutions: Mapping[str, Resolution]
) -> tuple[pygit2.Oid | None, list[TreeConflict]]:
    """Write the merged tree with ``resolutions`` (path → final text, bytes, or None to delete).

    Returns the tree, or None and the conflicts left without a resolution (the caller
    refuses to commit while there are any). A resolution for a path with no conflict is a
    ValueError: it would silently overwrite a clean merge.
    """
    stray = sorted(set(resolutions) - set(merge.conflicts))
    if stray:
        raise ValueError(f"no conflict to resolve in {stray[0]!r}")
    unresolved = [c for p, c in merge.conflicts.items() if p not in resolutions]
    if unresolved:
        return None, unresolved
    for path, value in resolutions.items():
        if value is not None and not isinstance(value, (str, bytes)):
            raise ValueError(f"resolution for {path!r} must be text, bytes or None")
        data = value.encode("utf-8") if isinstance(value, str) else value
        _set_entry(repo, merge.index, merge.conflicts[path], data)
    return merge.index.write_tree(repo), []
