"""Applying a change set (Put/Delete/Rename) to a tree, producing a new tree.

An in-memory index does the tree surgery: it creates intermediate directories and drops
directories left empty, which hand-written TreeBuilder recursion would have to redo.
Nothing here touches refs, so building a tree is always safe to throw away.
"""

from __future__ import annotations

from collections.abc import Sequence

import pygit2

from .errors import GitStoreError, InvalidPath, PathNotFound
from .paths import normalize_path
from .types import Change, Delete, Put, Rename

_BLOB_MODES = (pygit2.enums.FileMode.BLOB, pygit2.enums.FileMode.BLOB_EXECUTABLE)


def validate_changes(changes: Sequence[Change]) -> list[Change]:
    """Normalise every path up front so an invalid one fails before anything is written."""
    out: list[Change] = []
    for change in changes:
        if isinstance(change, Put):
            if not isinstance(change.data, (bytes, bytearray, memoryview, str)):
                raise GitStoreError(f"Put data for {change.path!r} must be bytes or str")
            out.append(Put(normalize_path(change.path), change.data))
        elif isinstance(change, Delete):
            out.append(Delete(normalize_path(change.path)))
        elif isinstance(change, Rename):
            out.append(Rename(normalize_path(change.old), normalize_path(change.new)))
        else:
            raise GitStoreError(f"unknown change {change!r}")
    return out


def _files_under(index: pygit2.Index, directory: str) -> list[str]:
    prefix = directory + "/"
    return [entry.path for entry in index if entry.path.startswith(prefix)]


def _check_collision(index: pygit2.Index, path: str) -> None:
    """Refuse a file/directory clash instead of letting the index silently drop files."""
    parts = path.split("/")
    for i in range(1, len(parts)):
        if "/".join(parts[:i]) in index:
            raise InvalidPath(f"{'/'.join(parts[:i])!r} is a file, cannot create {path!r}")
    if _files_under(index, path):
        raise InvalidPath(f"{path!r} is a directory")


def _add(index: pygit2.Index, path: str, oid: pygit2.Oid, mode: int) -> None:
    if path not in index:
        _check_collision(index, path)
    index.add(pygit2.IndexEntry(path, oid, mode))


def apply_changes(
    repo: pygit2.Repository, tree: pygit2.Tree | None, changes: Sequence[Change]
) -> pygit2.Oid:
    """Write the tree ``tree`` + ``changes`` (already validated) and return its oid."""
    index = pygit2.Index()
    if tree is not None:
        index.read_tree(tree)
    for change in changes:
        if isinstance(change, Put):
            blob = repo.create_blob(change.raw)
            mode = index[change.path].mode if change.path in index else pygit2.enums.FileMode.BLOB
            _add(
                index,
                change.path,
                blob,
                mode if mode in _BLOB_MODES else pygit2.enums.FileMode.BLOB,
            )
        elif isinstance(change, Delete):
            if change.path in index:
                index.remove(change.path)
            else:
                under = _files_under(index, change.path)
                if not under:
                    raise PathNotFound(f"no such file: {change.path}")
                for path in under:
                    index.remove(path)
        elif isinstance(change, Rename):
            if change.old not in index:
                raise PathNotFound(f"no such file: {change.old}")
            if change.old == change.new:
                continue
            entry = index[change.old]
            if change.new in index:
                raise InvalidPath(f"{change.new!r} already exists")
            index.remove(change.old)
            _add(index, change.new, entry.id, entry.mode)
    return index.write_tree(repo)
