"""One document = one bare repository: reading, writing, history, diffs and refs.

A Document holds only the open repository handle; every call re-reads refs, so two
Document objects (or two processes) on the same repository never act on stale state.
Every ref update is a compare-and-swap: a caller states the head it last saw, and if
anyone else moved the branch in between, the update fails instead of overwriting.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import ParamSpec, TypeVar

import pygit2
from pygit2.enums import ObjectType, SortMode

from . import diffing
from .changes import apply_changes, validate_changes
from .commits import author_of, build_message, commit_info, signature, when
from .errors import (
    BranchExists,
    CannotDeleteDefaultBranch,
    CannotRenameDefaultBranch,
    GitStoreError,
    InvalidCursor,
    InvalidRefName,
    MergeConflict,
    NotFastForward,
    NothingToCommit,
    PathNotFound,
    RefConflict,
    RefNotFound,
    TagExists,
    translate,
)
from .merging import (
    MergePreview,
    MergeStyle,
    Resolution,
    TreeConflict,
    TreeMerge,
    merge_trees,
    resolve_tree,
)
from .paths import normalize_path
from .types import (
    Author,
    BlameLine,
    BranchInfo,
    Change,
    CommitInfo,
    ConflictFile,
    Diff,
    FileContent,
    HistoryPage,
    SaveResult,
    TagInfo,
    TreeEntry,
)

_HEX = re.compile(r"[0-9a-fA-F]{4,40}")
MAX_PAGE = 500
# save() retries a merge this many times when the branch keeps moving underneath it.
_SAVE_ATTEMPTS = 5


#: Attempts at an operation whose object write lost a race with ``git gc`` (see below).
_GC_RACE_ATTEMPTS = 3


def _lost_race_with_gc(exc: OSError) -> bool:
    """libgit2 could not move a new object into a directory that gc had just removed.

    Matched without the system's error text (it follows the locale); any other failure
    to rename an object file into place simply fails again on the last attempt.
    """
    text = str(exc)
    return "rename lockfile" in text and "objects" in text


_P = ParamSpec("_P")
_T = TypeVar("_T")


def _survives_gc(method: Callable[_P, _T]) -> Callable[_P, _T]:
    """Run an operation that writes objects again if ``git gc`` removed a directory under it.

    Every ``git gc`` (scheduled maintenance, or the one ``receive-pack`` starts after a
    push) ends with ``prune-packed``, which removes empty ``objects/xx`` directories.
    libgit2 creates that directory and then renames its finished object into it; if
    the directory vanished in between, the write fails. Objects are content-addressed
    and every operation here moves its ref only after writing all of them, so running
    it again is safe (the ref's compare-and-swap still guards it).
    """

    @functools.wraps(method)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        for attempt in range(1, _GC_RACE_ATTEMPTS + 1):
            try:
                return method(*args, **kwargs)
            except OSError as exc:
                if attempt == _GC_RACE_ATTEMPTS or not _lost_race_with_gc(exc):
                    raise
        raise AssertionError("unreachable")

    return run


def _ref_name(prefix: str, name: str) -> str:
    """``refs/heads/<name>`` or ``refs/tags/<name>``, refusing names Git would reject."""
    if not isinstance(name, str) or not name or name == "HEAD" or name.startswith("-"):
        raise InvalidRefName(f"invalid name: {name!r}")
    full = f"{prefix}{name}"
    if not pygit2.reference_is_valid_name(full):
        raise InvalidRefName(f"invalid name: {name!r}")
    return full


def _branch_ref(name: str) -> str:
    if isinstance(name, str) and name.startswith("refs/heads/"):
        name = name[len("refs/heads/") :]
    return _ref_name("refs/heads/", name)


#: Most commits a history cursor may name: one per line of history still open.
MAX_CURSOR_OIDS = 500
_CURSOR_OID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


class HistoryWalk:
    """Newest-first walk of a history whose whole state is its frontier.

    The frontier is the commits reached but not yet walked (usually one, a few
    after merges), newest first, ties in the order they were reached. A step takes
    the first frontier commit that no other frontier commit leads to, walks it and
    queues its parents. Because a commit is only walked after every descendant the
    walk can still reach, nothing walked is ever reached again: the frontier alone
    is enough to resume, so a page's cursor is the frontier and the next page
    continues exactly as one unpaged walk would, with no duplicates and no gaps.

    libgit2's lazy walk (``SortMode.NONE``) cannot be resumed that way: with equal
    commit times it may walk a commit before a descendant on another line, and a
    walk restarted from the frontier then shows that commit a second time.

    "Leads to" is checked only through commits at least as new as the candidate
    (:class:`_Region`), so the check costs nothing when times differ and stays within
    the commits of the same second otherwise. A history whose clocks ran backwards (a parent newer than its child)
    can defeat that check; one walk still never repeats a commit, but a page
    boundary there may.
    """

    def __init__(self, repo: pygit2.Repository, frontier: Sequence[pygit2.Commit]) -> None:
        self.repo = repo
        self.frontier: list[pygit2.Commit] = []
        self.queued: set[pygit2.Oid] = set()
        #: Walked in this object's lifetime: guards against repeats when clocks ran backwards.
        self.walked: set[pygit2.Oid] = set()
        self._region: _Region | None = None
        for commit in frontier:
            if commit.id not in self.queued:
                self.frontier.append(commit)
                self.queued.add(commit.id)

    @classmethod
    def from_cursor(cls, repo: pygit2.Repository, cursor: str) -> HistoryWalk:
        """The walk a :meth:`cursor` string describes; InvalidCursor if it is not one."""
        parts = cursor.split(".") if isinstance(cursor, str) and cursor else []
        if not parts or len(parts) > MAX_CURSOR_OIDS:
            raise InvalidCursor("not a history cursor")
        commits = []
        for part in parts:
            if not _CURSOR_OID.fullmatch(part):
                raise InvalidCursor("not a history cursor")
            try:
                obj = repo.get(part)
            except (pygit2.GitError, KeyError, ValueError):
                obj = None
            if not isinstance(obj, pygit2.Commit):
                raise InvalidCursor("the history cursor names an unknown commit")
            commits.append(obj)
        return cls(repo, commits)

    def cursor(self) -> str | None:
        """Where the walk stands, as a short string; None when nothing is left."""
        return ".".join(str(c.id) for c in self.frontier) or None

    def __iter__(self) -> HistoryWalk:
        return self

    def __next__(self) -> pygit2.Commit:
        if not self.frontier:
            raise StopIteration
        commit = self.frontier.pop(self._next_index())
        self.queued.discard(commit.id)
        self.walked.add(commit.id)
        self._forget(commit)
        for parent in commit.parents:
            if parent.id not in self.queued and parent.id not in self.walked:
                self._queue(parent)
        return commit

    def _queue(self, commit: pygit2.Commit) -> None:
        """Insert newest first, after the commits of the same time already queued."""
        when = commit.commit_time
        index = next(
            (i for i, c in enumerate(self.frontier) if c.commit_time < when), len(self.frontier)
        )
        self.frontier.insert(index, commit)
        self.queued.add(commit.id)

    def _next_index(self) -> int:
        for index, candidate in enumerate(self.frontier):
            if not self._region_at(candidate.commit_time).leads_to(candidate.id):
                return index
        return 0  # only with clocks that ran backwards; the walked set still guards

    def _region_at(self, when: int) -> _Region:
        if self._region is None or self._region.when != when:
            self._region = _Region(self.frontier, when, self.walked)
        return self._region

    def _forget(self, commit: pygit2.Commit) -> None:
        """Keep the region of the current commit time up to date as ``commit`` is walked."""
        region = self._region
        if region is not None and region.when == commit.commit_time and region.is_source(commit):
            region.remove(commit)
        else:
            self._region = None


class _Region:
    """What the frontier reaches through commits at least ``when`` new, with in-degrees.

    A frontier commit another one leads to has an edge from inside the region. Walking a
    commit nothing in the region points at just removes it (and its edges), so while
    commits of one time are walked the region is built once, not once per commit: a
    thousand commits made in the same second cost a thousand steps, not a million.
    """

    def __init__(self, frontier: Sequence[pygit2.Commit], when: int, walked: set[pygit2.Oid]):
        self.when = when
        self.members: set[pygit2.Oid] = set()
        self.indegree: dict[pygit2.Oid, int] = {}
        stack = [c for c in frontier if c.commit_time >= when]
        self.members.update(c.id for c in stack)
        while stack:
            for parent in stack.pop().parents:
                self.indegree[parent.id] = self.indegree.get(parent.id, 0) + 1
                if (
                    parent.commit_time >= when
                    and parent.id not in self.members
                    and parent.id not in walked
                ):
                    self.members.add(parent.id)
                    stack.append(parent)

    def leads_to(self, oid: pygit2.Oid) -> bool:
        return self.indegree.get(oid, 0) > 0

    def is_source(self, commit: pygit2.Commit) -> bool:
        return commit.id in self.members and not self.leads_to(commit.id)

    def remove(self, commit: pygit2.Commit) -> None:
        self.members.discard(commit.id)
        for oid in commit.parent_ids:
            self.indegree[oid] -= 1


class Document:
    """A handle on one document repository. Cheap to create; safe to discard."""

    def __init__(self, doc_id: str, path: str | os.PathLike[str]) -> None:
        self.id = doc_id
        self.path = Path(path)
        try:
            self.repo = pygit2.Repository(str(self.path))
        except pygit2.GitError as exc:  # a directory that is not a repository
            raise GitStoreError(f"cannot open repository {self.path}: {exc}") from exc

    def __repr__(self) -> str:
        return f"Document({self.id!r})"

    # ------------------------------------------------------------------ refs

    @property
    def default_branch(self) -> str:
        """The branch HEAD points at (read on every access)."""
        head = self.repo.references.get("HEAD")
        target = head.target if head is not None else "refs/heads/main"
        return str(target).removeprefix("refs/heads/")

    def _target(self, refname: str) -> str | None:
        ref = self.repo.references.get(refname)
        return None if ref is None else str(ref.target)

    def _commit(self, oid: str) -> pygit2.Commit:
        return self.repo[self.resolve(oid)]  # type: ignore[return-value]

    def resolve(self, ref: str) -> str:
        """Commit oid for a branch, 'refs/...' name, tag (peeled), or full/short oid."""
        if not isinstance(ref, str) or not ref:
            raise RefNotFound(f"unknown revision: {ref!r}")
        if ref == "HEAD" or ref.startswith("refs/"):
            candidates = [ref]
        else:
            candidates = [f"refs/heads/{ref}", f"refs/tags/{ref}"]
        for name in candidates:
            if name != "HEAD" and not pygit2.reference_is_valid_name(name):
                continue
            found = self.repo.references.get(name)
            if found is None:
                continue
            try:
                return str(found.peel(pygit2.Commit).id)
            except (pygit2.GitError, KeyError, ValueError) as exc:
                raise RefNotFound(f"{ref!r} does not point at a commit") from exc
        if _HEX.fullmatch(ref):
            try:
                obj = self.repo.get(ref)
                if obj is not None:
                    return str(obj.peel(pygit2.Commit).id)
            except (pygit2.GitError, KeyError, ValueError):
                pass
        raise RefNotFound(f"unknown revision: {ref!r}")

    def head(self, branch: str) -> str:
        """Current commit of ``branch``."""
        target = self._target(_branch_ref(branch))
        if target is None:
            raise RefNotFound(f"no such branch: {branch!r}")
        return target

    def _move_ref(
        self, refname: str, new: pygit2.Oid | str, expected: str | None, message: str
    ) -> None:
        """Compare-and-swap ``refname`` from ``expected`` (None = must not exist) to ``new``.

        libgit2 takes the ref's lock file and compares the old value under the lock, so
        two writers racing from the same ``expected`` cannot both succeed.
        """

        def actual() -> str | None:
            return self._target(refname)

        with translate(ref=refname, expected=expected, actual=actual):
            if expected is None:
                self.repo.create_reference_direct(refname, new, False, message=message)
                return
            ref = self.repo.references.get(refname)
            if ref is None or str(ref.target) != expected:
                raise RefConflict(refname, expected, None if ref is None else str(ref.target))
            ref.set_target(new, message)

    def _check_head(self, refname: str, parent: str | None) -> str | None:
        """Fail early (before writing objects) if the branch is not at ``parent``."""
        actual = self._target(refname)
        if actual != parent:
            raise RefConflict(refname, parent, actual)
        return actual

    def _parent_commit(self, parent: str) -> pygit2.Commit:
        """Look up a caller's "head I last saw" by object id only.

        Accepting a branch name here would resolve to the current head and make the
        compare-and-swap always succeed, silently defeating it.
        """
        if not isinstance(parent, str) or not _HEX.fullmatch(parent):
            raise RefNotFound(f"parent must be a commit id, not {parent!r}")
        try:
            obj = self.repo.get(parent)
        except (pygit2.GitError, KeyError, ValueError):
            obj = None
        if not isinstance(obj, pygit2.Commit):
            raise RefNotFound(f"no such commit: {parent!r}")
        return obj

    def _normalize_parent(self, parent: str | None) -> str | None:
        return None if parent is None else str(self._parent_commit(parent).id)

    # ------------------------------------------------------------------ reading

    def _tree(self, ref: str) -> tuple[str, pygit2.Tree]:
        oid = self.resolve(ref)
        return oid, self.repo[oid].tree  # type: ignore[union-attr]

    def read(self, path: str, ref: str) -> FileContent:
        """The file at ``path`` as of ``ref``."""
        path = normalize_path(path)
        oid, tree = self._tree(ref)
        try:
            entry = tree[path]
        except KeyError:
            raise PathNotFound(f"{path!r} not found at {oid[:7]}") from None
        if entry.type != ObjectType.BLOB:
            raise PathNotFound(f"{path!r} is not a file at {oid[:7]}")
        blob = self.repo[entry.id]
        return FileContent(path=path, data=blob.data, blob=str(entry.id), commit=oid)  # type: ignore[union-attr]

    def _entry(self, base: str, obj: pygit2.Object) -> TreeEntry | None:
        path = f"{base}/{obj.name}" if base else obj.name
        if obj.type == ObjectType.TREE:
            return TreeEntry(obj.name, path, "tree", None, str(obj.id))
        if obj.type == ObjectType.BLOB:
            _, size = self.repo.odb.read_header(obj.id)
            return TreeEntry(obj.name, path, "blob", size, str(obj.id))
        return None  # submodule links are not documents' business

    def list_tree(self, ref: str, path: str = "") -> list[TreeEntry]:
        """One directory level: directories first, then files, each by name."""
        path = normalize_path(path, allow_root=True)
        oid, tree = self._tree(ref)
        if path:
            try:
                tree = tree[path]
            except KeyError:
                raise PathNotFound(f"{path!r} not found at {oid[:7]}") from None
            if tree.type != ObjectType.TREE:
                raise PathNotFound(f"{path!r} is not a directory at {oid[:7]}")
        entries = [e for e in (self._entry(path, obj) for obj in tree) if e is not None]
        return sorted(entries, key=lambda e: (e.kind != "tree", e.name))

    def list_files(self, ref: str) -> list[TreeEntry]:
        """Every file in the tree, recursively, sorted by path."""
        _, tree = self._tree(ref)
        out: list[TreeEntry] = []
        stack: list[tuple[str, pygit2.Tree]] = [("", tree)]
        while stack:
            base, current = stack.pop()
            for obj in current:
                entry = self._entry(base, obj)
                if entry is None:
                    continue
                if entry.kind == "tree":
                    stack.append((entry.path, self.repo[obj.id]))  # type: ignore[arg-type]
                else:
                    out.append(entry)
        return sorted(out, key=lambda e: e.path)

    # ------------------------------------------------------------------ writing

    def _commit_tree(
        self,
        refname: str,
        tree: pygit2.Oid,
        parents: list[str],
        expected: str | None,
        *,
        author: Author,
        committer: Author | None,
        message: str,
    ) -> str:
        """Create a commit object, then CAS the ref onto it. Returns the new oid."""
        author_sig = signature(author)
        committer_sig = signature(committer) if committer else author_sig
        with translate():
            oid = self.repo.create_commit(None, author_sig, committer_sig, message, tree, parents)
        summary = message.split("\n", 1)[0]
        self._move_ref(refname, oid, expected, f"commit: {summary}")
        return str(oid)

    @_survives_gc
    def write(
        self,
        branch: str,
        changes: Sequence[Change],
        *,
        parent: str | None,
        author: Author,
        message: str,
        committer: Author | None = None,
        co_authors: Sequence[Author] = (),
    ) -> str:
        """Commit ``changes`` on ``branch`` as one commit, only if its head is ``parent``.

        ``parent=None`` creates the branch (from an empty tree). Raises RefConflict if
        the branch is elsewhere, NothingToCommit if the tree would not change.
        """
        refname = _branch_ref(branch)
        changes = validate_changes(changes)
        parent = self._normalize_parent(parent)
        self._check_head(refname, parent)
        base = self.repo[parent].tree if parent else None  # type: ignore[union-attr]
        tree = apply_changes(self.repo, base, changes)
        if base is not None and tree == base.id:
            raise NothingToCommit("no changes")
        return self._commit_tree(
            refname,
            tree,
            [parent] if parent else [],
            parent,
            author=author,
            committer=committer,
            message=build_message(message, co_authors),
        )

    def _conflicts(self, index: pygit2.Index) -> list[ConflictFile]:
        def data(entry: pygit2.IndexEntry | None) -> bytes | None:
            return None if entry is None else self.repo[entry.id].data  # type: ignore[union-attr]

        out = []
        for base, ours, theirs in index.conflicts:
            path = next(e.path for e in (ours, theirs, base) if e is not None)
            out.append(ConflictFile(path, data(base), data(ours), data(theirs)))
        return sorted(out, key=lambda c: c.path)

    @_survives_gc
    def save(
        self,
        branch: str,
        changes: Sequence[Change],
        *,
        parent: str,
        author: Author,
        message: str,
        co_authors: Sequence[Author] = (),
    ) -> SaveResult:
        """Like write(), but if the branch moved since ``parent``, merge instead of failing.

        The merge is three-way: base = ``parent``, ours = the branch head, theirs =
        ``parent`` + ``changes``, and prose-aware like a branch merge (two edits to
        different sentences of one paragraph both land). A clean result is committed on
        top of the head (single parent, so history stays linear); otherwise
        MergeConflict lists both versions.
        """
        refname = _branch_ref(branch)
        changes = validate_changes(changes)
        parent_commit = self._parent_commit(parent)
        full_message = build_message(message, co_authors)
        theirs = apply_changes(self.repo, parent_commit.tree, changes)
        if theirs == parent_commit.tree_id:
            raise NothingToCommit("no changes")
        for attempt in range(_SAVE_ATTEMPTS):
            head = self._target(refname)
            if head is None:
                raise RefNotFound(f"no such branch: {branch!r}")
            if head == str(parent_commit.id):
                tree, merged = theirs, False
            else:
                head_commit = self.repo[head]
                with translate():
                    result = merge_trees(
                        self.repo,
                        parent_commit.tree,
                        head_commit.tree,  # type: ignore[union-attr]
                        self.repo[theirs],  # type: ignore[arg-type]
                    )
                if result.conflicts:
                    raise MergeConflict(self._conflict_files(list(result.conflicts.values())))
                with translate():
                    tree, merged = result.index.write_tree(self.repo), True
                if tree == head_commit.tree_id:  # type: ignore[union-attr]
                    raise NothingToCommit("changes already present on the branch")
            try:
                oid = self._commit_tree(
                    refname, tree, [head], head, author=author, committer=None, message=full_message
                )
            except RefConflict:
                if attempt == _SAVE_ATTEMPTS - 1:
                    raise
                continue
            return SaveResult(commit=oid, merged=merged)
        raise AssertionError("unreachable")  # pragma: no cover

    @_survives_gc
    def restore(
        self,
        branch: str,
        version: str,
        *,
        parent: str,
        author: Author,
        message: str | None = None,
    ) -> str:
        """Commit ``version``'s tree on top of the branch head; nothing is rewritten."""
        refname = _branch_ref(branch)
        source = self._commit(version)
        parent = self._normalize_parent(parent)
        self._check_head(refname, parent)
        if self.repo[parent].tree_id == source.tree_id:  # type: ignore[union-attr]
            raise NothingToCommit("already identical to that version")
        text = message or f"Restore version {str(source.id)[:7]}"
        return self._commit_tree(
            refname,
            source.tree_id,
            [parent],
            parent,
            author=author,
            committer=None,
            message=build_message(text),
        )

    @_survives_gc
    def revert(self, branch: str, oid: str, *, parent: str, author: Author) -> str:
        """Commit the inverse of ``oid`` on top of the branch head."""
        refname = _branch_ref(branch)
        target = self._commit(oid)
        parent = self._normalize_parent(parent)
        self._check_head(refname, parent)
        head_commit = self.repo[parent]
        if not target.parent_ids:
            raise GitStoreError("cannot revert the initial commit")
        with translate():
            index = self.repo.revert_commit(
                target, head_commit, 1 if len(target.parent_ids) > 1 else 0
            )  # type: ignore[arg-type]
        if index.conflicts is not None:
            raise MergeConflict(self._conflicts(index))
        tree = index.write_tree(self.repo)
        if tree == head_commit.tree_id:  # type: ignore[union-attr]
            raise NothingToCommit("revert changes nothing")
        summary = target.message.split("\n", 1)[0].strip()
        text = f'Revert "{summary}"\n\nThis reverts commit {target.id}.'
        return self._commit_tree(
            refname,
            tree,
            [parent],
            parent,
            author=author,
            committer=None,
            message=build_message(text),
        )

    # ------------------------------------------------------------------ history

    def _path_oid(self, commit: pygit2.Commit, path: str) -> pygit2.Oid | None:
        try:
            return commit.tree[path].id
        except KeyError:
            return None

    def _touches(
        self, commit: pygit2.Commit, path: str, seen: dict[pygit2.Oid, object] | None = None
    ) -> bool:
        """True when ``path`` differs from every parent (Git's TREESAME rule).

        ``seen`` remembers each commit's entry for ``path`` during one walk: in a
        linear history a commit's parent is the next commit walked, so every tree
        is read once instead of twice.
        """
        seen = {} if seen is None else seen

        def path_oid(c: pygit2.Commit) -> object:
            if c.id not in seen:
                seen[c.id] = self._path_oid(c, path)
            return seen[c.id]

        mine = path_oid(commit)
        if not commit.parents:
            return mine is not None
        return all(path_oid(p) != mine for p in commit.parents)

    def history(
        self, ref: str, *, path: str | None = None, after: str | None = None, limit: int = 50
    ) -> HistoryPage:
        """Newest-first commits reachable from ``ref``, a page at a time.

        ``after`` is the previous page's ``next_cursor``: the walk's frontier (see
        :class:`HistoryWalk`), so the next page continues exactly where the last one
        stopped, across merges, and costs work proportional to its size, not its
        depth. With ``after`` the walk no longer depends on ``ref``. A cursor that is
        not one this method made raises :class:`InvalidCursor`.
        """
        limit = max(1, min(MAX_PAGE, int(limit)))
        path = normalize_path(path) if path else None
        if after:
            walk = HistoryWalk.from_cursor(self.repo, after)
        else:
            walk = HistoryWalk(self.repo, [self._commit(self.resolve(ref))])
        found: list[pygit2.Commit] = []
        seen: dict[pygit2.Oid, object] = {}
        cursor: str | None = None
        for commit in walk:
            if path is not None and not self._touches(commit, path, seen):
                continue
            if len(found) == limit:  # a match beyond this page: there is a next one
                return HistoryPage([commit_info(c) for c in found], cursor)
            found.append(commit)
            if len(found) == limit:
                cursor = walk.cursor()
        return HistoryPage([commit_info(c) for c in found], None)

    def commit(self, oid: str) -> CommitInfo:
        return commit_info(self._commit(oid))

    # ------------------------------------------------------------------ diffs

    word_diff = staticmethod(diffing.word_diff)

    def _empty_tree(self) -> pygit2.Tree:
        return self.repo[self.repo.TreeBuilder().write()]  # type: ignore[return-value]

    def _diff_trees(
        self,
        old_tree: pygit2.Tree,
        new_tree: pygit2.Tree,
        old: str,
        new: str,
        paths: Sequence[str] | None,
        context: int,
        word_level: bool,
    ) -> Diff:
        wanted = None if paths is None else [normalize_path(p) for p in paths]
        with translate():
            raw = old_tree.diff_to_tree(new_tree, context_lines=max(0, int(context)))
            raw.find_similar()
        return diffing.convert(raw, old, new, paths=wanted, word_level=word_level)

    def diff(
        self,
        old: str,
        new: str,
        *,
        paths: Sequence[str] | None = None,
        context: int = 3,
        word_level: bool = True,
    ) -> Diff:
        """Changes from ``old`` to ``new`` (any refs), with rename detection."""
        old_oid, old_tree = self._tree(old)
        new_oid, new_tree = self._tree(new)
        return self._diff_trees(old_tree, new_tree, old_oid, new_oid, paths, context, word_level)

    @_survives_gc
    def commit_diff(self, oid: str) -> Diff:
        """What ``oid`` changed relative to its first parent (or to nothing, for a root).

        For a root commit ``Diff.old`` is the empty tree's oid.
        """
        commit = self._commit(oid)
        if commit.parents:
            parent = commit.parents[0]
            return self._diff_trees(
                parent.tree, commit.tree, str(parent.id), str(commit.id), None, 3, True
            )
        empty = self._empty_tree()
        return self._diff_trees(empty, commit.tree, str(empty.id), str(commit.id), None, 3, True)

    def blame(self, path: str, ref: str) -> list[BlameLine]:
        """Who last changed each line of ``path`` as of ``ref``."""
        content = self.read(path, ref)
        with translate():
            blame = self.repo.blame(content.path, newest_commit=content.commit)
        text = content.text
        lines = text.split("\n")
        if text.endswith("\n"):
            lines.pop()
        people: dict[str, tuple[Author, object]] = {}
        out: list[BlameLine] = []
        for hunk in blame:
            oid = str(hunk.final_commit_id)
            if oid not in people:
                commit = self.repo[oid]
                people[oid] = (author_of(commit.author), when(commit.author))  # type: ignore[union-attr]
            who, at = people[oid]
            start = hunk.final_start_line_number
            for line_no in range(start, start + hunk.lines_in_hunk):
                if 1 <= line_no <= len(lines):
                    out.append(BlameLine(line_no, lines[line_no - 1], oid, who, at))  # type: ignore[arg-type]
        return sorted(out, key=lambda b: b.line_no)

    # ------------------------------------------------------------------ branches & tags

    def branches(self) -> list[BranchInfo]:
        """Default branch first, then most recently updated."""
        default = self.default_branch
        out = []
        for refname in self.repo.references:
            if not refname.startswith("refs/heads/"):
                continue
            target = self._target(refname)
            if target is None:  # deleted while we were listing
                continue
            commit = self.repo[target]
            name = refname.removeprefix("refs/heads/")
            out.append(
                BranchInfo(
                    name=name,
                    head=target,
                    is_default=name == default,
                    updated_at=when(commit.committer),  # type: ignore[union-attr]
                    author=author_of(commit.author),  # type: ignore[union-attr]
                )
            )
        out.sort(key=lambda b: b.name)
        out.sort(key=lambda b: b.updated_at, reverse=True)
        out.sort(key=lambda b: not b.is_default)
        return out

    def create_branch(self, name: str, from_ref: str) -> str:
        """Create ``name`` at ``from_ref``; never moves an existing branch. Returns its head."""
        refname = _branch_ref(name)
        oid = self.resolve(from_ref)
        try:
            self._move_ref(refname, oid, None, f"branch: created from {from_ref}")
        except RefConflict:
            raise BranchExists(f"branch {name!r} already exists") from None
        return oid

    def delete_branch(self, name: str, *, expected: str | None = None) -> None:
        """Delete a branch (never the default); with ``expected``, only if still there."""
        refname = _branch_ref(name)
        if refname == f"refs/heads/{self.default_branch}":
            raise CannotDeleteDefaultBranch(f"{name!r} is the default branch")
        ref = self.repo.references.get(refname)
        if ref is None:
            raise RefNotFound(f"no such branch: {name!r}")
        current = str(ref.target)
        if expected is not None and current != expected:
            raise RefConflict(refname, expected, current)
        # libgit2 deletes only if the ref still holds the value it was loaded with.
        with translate(ref=refname, expected=current, actual=lambda: self._target(refname)):
            ref.delete()

    def tags(self) -> list[TagInfo]:
        """All tags, newest first (lightweight tags dated by their commit)."""
        out: list[tuple[float, TagInfo]] = []
        for refname in self.repo.references:
            if not refname.startswith("refs/tags/"):
                continue
            ref = self.repo.references.get(refname)
            if ref is None:
                continue
            try:
                commit = ref.peel(pygit2.Commit)
            except (pygit2.GitError, ValueError, KeyError):
                continue  # a tag on a blob or tree is not a version of the document
            obj = self.repo[ref.target]
            name = refname.removeprefix("refs/tags/")
            if isinstance(obj, pygit2.Tag):
                tagger = obj.tagger
                info = TagInfo(
                    name=name,
                    target=str(commit.id),
                    message=obj.message,
                    tagger=author_of(tagger) if tagger else None,
                    created_at=when(tagger) if tagger else None,
                )
                stamp = tagger.time if tagger else commit.commit_time
            else:
                info = TagInfo(name, str(commit.id), None, None, None)
                stamp = commit.commit_time
            out.append((stamp, info))
        out.sort(key=lambda pair: (-pair[0], pair[1].name))
        return [info for _, info in out]

    @_survives_gc
    def create_tag(self, name: str, target_ref: str, *, tagger: Author, message: str) -> str:
        """Create an annotated tag; existing tags are refused, never moved.

        Returns the oid of the tagged commit.
        """
        _ref_name("refs/tags/", name)
        oid = self.resolve(target_ref)
        with translate(exists=TagExists):
            self.repo.create_tag(
                name, oid, ObjectType.COMMIT, signature(tagger), build_message(message)
            )
        return oid

    def delete_tag(self, name: str, *, expected: str | None = None) -> str:
        """Delete tag ``name``; with ``expected`` (the tag object's id), only if still there.

        Tags are immutable in Quire, but a push may replace one (``git push --force``):
        ``expected`` makes sure the tag deleted is the one the caller looked at. Names
        are checked with Git's own rule, not Quire's stricter one, so tags pushed with
        names Quire would not create can still be deleted. Returns the deleted ref's
        target (the tag object's id, or the commit's for a lightweight tag).
        """
        refname = f"refs/tags/{name}" if isinstance(name, str) and name else ""
        if not refname or not pygit2.reference_is_valid_name(refname):
            raise InvalidRefName(f"invalid tag name: {name!r}")
        ref = self.repo.references.get(refname)
        if ref is None:
            raise RefNotFound(f"no such tag: {name!r}")
        current = str(ref.target)
        if expected is not None and current != expected:
            raise RefConflict(refname, expected, current)
        # As for branches: libgit2 deletes only if the ref still holds the loaded value.
        with translate(ref=refname, expected=current, actual=lambda: self._target(refname)):
            ref.delete()
        return current

    # ------------------------------------------------------------------ merging

    def merge_base(self, a: str, b: str) -> str | None:
        """The best common ancestor of two revisions, or None for unrelated histories."""
        with translate():
            base = self.repo.merge_base(self.resolve(a), self.resolve(b))
        return None if base is None else str(base)

    def ahead_behind(self, branch: str, base: str) -> tuple[int, int]:
        """Commits on ``branch`` that ``base`` lacks, and commits on ``base`` that ``branch`` lacks."""
        with translate():
            ahead, behind = self.repo.ahead_behind(self.resolve(branch), self.resolve(base))
        return ahead, behind

    def commits_between(self, base: str, head: str, limit: int = 250) -> list[CommitInfo]:
        """``head``'s commits that ``base`` does not contain, newest first (at most ``limit``)."""
        limit = max(1, min(MAX_PAGE, int(limit)))
        base_oid, head_oid = self.resolve(base), self.resolve(head)
        with translate():
            walker = self.repo.walk(head_oid, SortMode.TOPOLOGICAL | SortMode.TIME)
            walker.hide(base_oid)
            out = []
            for commit in walker:
                out.append(commit_info(commit))
                if len(out) >= limit:
                    break
        return out

    def rename_branch(self, old: str, new: str, *, expected: str | None = None) -> None:
        """Rename a branch in one ref transaction: both refs are locked, then checked.

        The default branch is refused (HEAD would dangle); so is a ``new`` that exists.
        If anyone moves ``old`` or holds either ref's lock meanwhile, RefConflict. With
        ``expected`` (the head the caller read, e.g. to record the move) the branch must
        still be there, so the caller's record of the rename is exact.
        """
        old_ref, new_ref = _branch_ref(old), _branch_ref(new)
        if old_ref == f"refs/heads/{self.default_branch}":
            raise CannotRenameDefaultBranch(f"{old!r} is the default branch")
        seen = self._target(old_ref)
        if seen is None:
            raise RefNotFound(f"no such branch: {old!r}")
        if expected is not None and seen != expected:
            raise RefConflict(old_ref, expected, seen)
        if old_ref == new_ref or self._target(new_ref) is not None:
            raise BranchExists(f"branch {new!r} already exists")

        def actual() -> str | None:
            return self._target(old_ref)

        with (
            translate(ref=old_ref, expected=seen, actual=actual),
            self.repo.transaction() as txn,
        ):
            txn.lock_ref(old_ref)
            txn.lock_ref(new_ref)
            current = self._target(old_ref)
            if current != seen:
                raise RefConflict(old_ref, seen, current)
            if self._target(new_ref) is not None:
                raise BranchExists(f"branch {new!r} already exists")
            txn.set_target(new_ref, current, message=f"branch: renamed {old_ref} to {new_ref}")
            txn.remove(old_ref)

    def _merge_state(self, target: str, source: str) -> tuple[str, str, str | None, bool, bool]:
        """Resolved oids, merge base, and whether the merge is a no-op or a fast-forward."""
        target_oid, source_oid = self.resolve(target), self.resolve(source)
        base = self.merge_base(target_oid, source_oid)
        up_to_date = base == source_oid
        fast_forward = not up_to_date and base == target_oid
        return target_oid, source_oid, base, up_to_date, fast_forward

    def _tree_merge(self, base: str | None, ours: str, theirs: str) -> TreeMerge:
        """Merge two commits' trees from ``base`` (None: the empty tree)."""
        base_tree = self.repo[base].tree if base else self._empty_tree()  # type: ignore[union-attr]
        with translate():
            return merge_trees(self.repo, base_tree, self.repo[ours].tree, self.repo[theirs].tree)  # type: ignore[union-attr]

    @_survives_gc
    def preview_merge(self, target: str, source: str) -> MergePreview:
        """What merging ``source`` into ``target`` would give; moves no ref.

        Unrelated histories merge from an empty tree, so every shared path is an add/add.
        """
        target_oid, source_oid, base, up_to_date, fast_forward = self._merge_state(target, source)
        if up_to_date or fast_forward:
            files, conflicts = (), ()
        else:
            merged = self._tree_merge(base, target_oid, source_oid)
            files, conflicts = merged.files, tuple(merged.conflicts)
        return MergePreview(
            target=target_oid,
            source=source_oid,
            base=base,
            up_to_date=up_to_date,
            fast_forward=fast_forward,
            files=files,
            conflicts=conflicts,
        )

    def _conflict_files(self, conflicts: Sequence[TreeConflict]) -> list[ConflictFile]:
        def data(entry: pygit2.IndexEntry | None) -> bytes | None:
            return None if entry is None else self.repo[entry.id].data  # type: ignore[union-attr]

        return [ConflictFile(c.path, data(c.base), data(c.ours), data(c.theirs)) for c in conflicts]

    @_survives_gc
    def merge(
        self,
        target_branch: str,
        source: str,
        *,
        style: MergeStyle,
        expected_target: str,
        author: Author,
        message: str,
        resolutions: Mapping[str, Resolution] | None = None,
        co_authors: Sequence[Author] = (),
    ) -> str:
        """Merge ``source`` (branch or oid) into ``target_branch``; returns the new head.

        "merge" always makes a two-parent commit (like ``--no-ff``), "squash" one commit
        on the target head, "ff" moves the target to the source (NotFastForward if it
        cannot). ``resolutions`` maps each conflicted path to its final text (bytes for a
        binary file, None to delete it). The target moves only if it is still at
        ``expected_target``.
        """
        if style not in ("merge", "squash", "ff"):
            raise ValueError(f"unknown merge style: {style!r}")
        refname = _branch_ref(target_branch)
        expected = str(self._parent_commit(expected_target).id)
        self.head(target_branch)  # RefNotFound for a missing branch, before the CAS check
        self._check_head(refname, expected)
        target_oid, source_oid, base, up_to_date, fast_forward = self._merge_state(expected, source)
        resolutions = dict(resolutions or {})
        if up_to_date:
            raise NothingToCommit(f"{target_branch!r} already contains {source_oid[:7]}")
        if style == "ff":
            if not fast_forward:
                raise NotFastForward(f"{target_branch!r} has commits that {source!r} lacks")
            if resolutions:
                raise ValueError("a fast-forward has no conflicts to resolve")
            self._move_ref(refname, source_oid, expected, f"merge {source}: fast-forward")
            return source_oid
        merged = self._tree_merge(base, target_oid, source_oid)
        with translate():
            tree, unresolved = resolve_tree(self.repo, merged, resolutions)
        if unresolved or tree is None:
            raise MergeConflict(self._conflict_files(unresolved))
        if style == "squash" and tree == self.repo[target_oid].tree_id:  # type: ignore[union-attr]
            raise NothingToCommit("the squashed changes are already on the target")
        parents = [target_oid, source_oid] if style == "merge" else [target_oid]
        return self._commit_tree(
            refname,
            tree,
            parents,
            expected,
            author=author,
            committer=None,
            message=build_message(message, co_authors),
        )

    @_survives_gc
    def revert_range(
        self, branch: str, before: str, after: str, *, parent: str, author: Author, message: str
    ) -> str:
        """Commit on ``branch`` the inverse of the change ``before`` → ``after``.

        Three-way against the current head (base = ``after``, ours = head, theirs =
        ``before``), so later edits elsewhere survive; overlapping ones are a
        MergeConflict. Any merge style can be undone this way: pass the target head
        before the merge and the head it produced.
        """
        refname = _branch_ref(branch)
        expected = str(self._parent_commit(parent).id)
        self.head(branch)
        self._check_head(refname, expected)
        before_oid, after_oid = self.resolve(before), self.resolve(after)
        merged = self._tree_merge(after_oid, expected, before_oid)
        if merged.conflicts:
            raise MergeConflict(self._conflict_files(list(merged.conflicts.values())))
        with translate():
            tree = merged.index.write_tree(self.repo)
        if tree == self.repo[expected].tree_id:  # type: ignore[union-attr]
            raise NothingToCommit("nothing to revert")
        return self._commit_tree(
            refname,
            tree,
            [expected],
            expected,
            author=author,
            committer=None,
            message=build_message(message),
        )
