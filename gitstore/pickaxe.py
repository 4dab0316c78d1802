"""Which commits added or removed a phrase: ``git log -S`` over one document.

A commit *changes* the phrase when the number of its occurrences in a file differs
between the commit and its first parent. Merge commits are skipped, as git does
without ``-m``: the commits that brought the change on the merged branch are
walked themselves. The walk is bounded (``max_commits``) and resumable (the page's
``next_cursor``), so a long history costs a page's worth of work per request.
"""

from __future__ import annotations

from dataclasses import dataclass

import pygit2

from .commits import commit_info
from .document import Document, HistoryWalk
from .types import CommitInfo

#: Blobs larger than this are not searched (binary-sized text is not prose).
MAX_BLOB_BYTES = 2_000_000


@dataclass(frozen=True)
class PhraseChange:
    """How many times the phrase occurs in ``path`` before and after the commit."""

    path: str
    before: int
    after: int

    @property
    def added(self) -> bool:
        return self.after > self.before


@dataclass(frozen=True)
class PickaxeHit:
    commit: CommitInfo
    changes: tuple[PhraseChange, ...]

    @property
    def added(self) -> int:
        return sum(max(0, c.after - c.before) for c in self.changes)

    @property
    def removed(self) -> int:
        return sum(max(0, c.before - c.after) for c in self.changes)


@dataclass(frozen=True)
class PickaxePage:
    hits: list[PickaxeHit]
    #: Pass as ``after`` to continue the walk; None when the history is exhausted.
    next_cursor: str | None
    scanned: int


def _count(repo: pygit2.Repository, oid: pygit2.Oid, needle: str, fold: bool) -> int:
    if oid is None or oid.raw == b"\x00" * len(oid.raw):
        return 0
    blob = repo.get(oid)
    if not isinstance(blob, pygit2.Blob) or blob.is_binary or blob.size > MAX_BLOB_BYTES:
        return 0
    text = blob.data.decode("utf-8", errors="replace")
    return (text.casefold() if fold else text).count(needle)


def _changes(
    repo: pygit2.Repository, commit: pygit2.Commit, needle: str, fold: bool
) -> tuple[PhraseChange, ...]:
    parent_tree = commit.parents[0].tree if commit.parents else None
    if parent_tree is None:
        diff = commit.tree.diff_to_tree(swap=True)
    else:
        diff = repo.diff(parent_tree, commit.tree)
    found: list[PhraseChange] = []
    for delta in diff.deltas:
        before = _count(repo, delta.old_file.id, needle, fold)
        after = _count(repo, delta.new_file.id, needle, fold)
        if before != after:
            found.append(PhraseChange(delta.new_file.path or delta.old_file.path, before, after))
    return tuple(found)


def phrase_changes(
    document: Document,
    ref: str,
    phrase: str,
    *,
    after: str | None = None,
    limit: int = 20,
    max_commits: int = 500,
    ignore_case: bool = True,
) -> PickaxePage:
    """Newest-first commits reachable from ``ref`` whose diff changes the phrase's count."""
    needle = phrase.casefold() if ignore_case else phrase
    if not needle:
        return PickaxePage([], None, 0)
    repo = document.repo
    # The history's own resumable walk: its cursor is the walk's frontier, so a page
    # that stops inside a merged branch resumes there instead of skipping its commits.
    if after:
        walk = HistoryWalk.from_cursor(repo, after)
    else:
        walk = HistoryWalk(repo, [repo[document.resolve(ref)]])
    hits: list[PickaxeHit] = []
    scanned = 0
    while len(hits) < limit and scanned < max_commits:
        commit = next(walk, None)
        if commit is None:
            return PickaxePage(hits, None, scanned)
        scanned += 1
        if len(commit.parents) > 1:
            continue
        changes = _changes(repo, commit, needle, ignore_case)
        if changes:
            hits.append(PickaxeHit(commit_info(commit), changes))
    return PickaxePage(hits, walk.cursor(), scanned)
