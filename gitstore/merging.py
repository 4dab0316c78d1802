"""Three-way merges of prose: text merges that know about sentences and words, and the
value types a merge preview is made of.

Why not stop at Git's line merge: a paragraph of prose is usually one long line, so two
people editing different sentences of the same paragraph conflict in Git (and in every
forge built on it). Here each conflicted line hunk is merged again, sentence by sentence
and then word by word; only changes that really overlap are left for a person to resolve.

Why Git's own line merge first: when Git merges a file cleanly, people expect exactly
Git's result (what ``git merge`` on a clone would give), so the line pass *is* libgit2's
``merge_file`` (the same xdiff code as ``git merge-file``); the finer passes run only
where Git gives up. Those use merge3 (Breezy's three-way merge over any sequence) on
lines, sentences and word tokens.

Nothing here touches a document's repository: these are pure functions of three texts.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Literal

import pygit2
from merge3 import Merge3
from pygit2.enums import FileMode

__all__ = [
    "ConflictRegion",
    "FileMerge",
    "MergePreview",
    "MergeStyle",
    "Pick",
    "merge_text",
    "prose_merge",
]

MergeStyle = Literal["merge", "squash", "ff"]
Pick = Literal["ours", "theirs", "both", "edit"]
_PICKS = ("ours", "theirs", "both", "edit")

#: A finer pass is skipped when a conflicted hunk has more tokens than this: difflib
#: without autojunk is quadratic in the worst case, and such a hunk is a rewrite anyway.
MAX_REFINE_TOKENS = 20_000

_LINE = re.compile(r"[^\n]*\n|[^\n]+")
# A sentence runs to its terminator (plus closing quotes/brackets) when whitespace or the
# end follows, or else to the end of its line. Whitespace between sentences is a token of
# its own, so it anchors the merge between two edited sentences. A wrong split (say after
# "e.g.") only moves where a conflict is cut: every conflicting sentence is retried word
# by word, so the merged text does not depend on it.
_SENTENCE = re.compile(r"\s+|\S(?:[^\n]*?)(?:[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s|\Z)|(?=\n)|\Z)")
_WORD = re.compile(r"\s+|\w+|[^\w\s]")


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


def _matcher(junk: object, a: Sequence[str], b: Sequence[str]) -> SequenceMatcher[str]:
    # autojunk would treat frequent tokens (spaces, "the") as junk in long hunks and
    # lose exactly the anchors that keep two edits apart.
    return SequenceMatcher(None, a, b, autojunk=False)


_Chunk = str | tuple[str, str, str]  # clean text, or (base, ours, theirs) still conflicting


def _merge_tokens(base: list[str], ours: list[str], theirs: list[str]) -> list[_Chunk]:
    """merge3 over token lists: clean text and (base, ours, theirs) conflicts, in order."""
    out: list[_Chunk] = []
    merger = Merge3(base, ours, theirs, sequence_matcher=_matcher)  # type: ignore[arg-type]
    for region in merger.merge_regions():
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


_Tokenizer = Callable[[str], list[str]]


def _lines(text: str) -> list[str]:
    return _LINE.findall(text)


def _sentences(text: str) -> list[str]:
    return _SENTENCE.findall(text)


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _refine(base: str, ours: str, theirs: str, passes: Sequence[_Tokenizer]) -> list[_Chunk]:
    """Merge at the first granularity in ``passes``; retry each conflict at the next."""
    if ours == theirs:
        return [ours]
    if base == ours:
        return [theirs]
    if base == theirs:
        return [ours]
    if not passes:
        return [(base, ours, theirs)]
    split, rest = passes[0], passes[1:]
    tokens = split(base), split(ours), split(theirs)
    if sum(len(t) for t in tokens) > MAX_REFINE_TOKENS:
        return [(base, ours, theirs)]
    out: list[_Chunk] = []
    for chunk in _merge_tokens(*tokens):
        if isinstance(chunk, str):
            out.append(chunk)
        else:
            out.extend(_refine(*chunk, rest))
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
    return _file_merge(path, _refine(base, ours, theirs, (_lines, _sentences, _words)))


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
) -> tuple[pygit2.Oid, list[TreeConflict]]:
    """Write the merged tree with ``resolutions`` (path → final text, bytes, or None to delete).

    Returns the tree and the conflicts left without a resolution (the caller refuses to
    commit while there are any). A resolution for a path with no conflict is a
    ValueError: it would silently overwrite a clean merge.
    """
    stray = sorted(set(resolutions) - set(merge.conflicts))
    if stray:
        raise ValueError(f"no conflict to resolve in {stray[0]!r}")
    unresolved = [c for p, c in merge.conflicts.items() if p not in resolutions]
    if unresolved:
        return pygit2.Oid(hex="0" * 40), unresolved
    for path, value in resolutions.items():
        if value is not None and not isinstance(value, (str, bytes)):
            raise ValueError(f"resolution for {path!r} must be text, bytes or None")
        data = value.encode("utf-8") if isinstance(value, str) else value
        _set_entry(repo, merge.index, merge.conflicts[path], data)
    return merge.index.write_tree(repo), []
