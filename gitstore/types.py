"""Plain, immutable value types returned by gitstore.

They carry only str/bytes/datetime so callers never hold pygit2 objects (which keep the
repository open and are not safe to pass between threads).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal


@dataclass(frozen=True)
class Author:
    """A person as Git records them: name and email."""

    name: str
    email: str

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


@dataclass(frozen=True)
class Put:
    """Add or replace a file. ``str`` data is stored utf-8 encoded."""

    path: str
    data: bytes | str

    @property
    def raw(self) -> bytes:
        return self.data.encode("utf-8") if isinstance(self.data, str) else bytes(self.data)


@dataclass(frozen=True)
class Delete:
    """Remove a file (or every file under a directory)."""

    path: str


@dataclass(frozen=True)
class Rename:
    """Move a file, keeping its content and mode."""

    old: str
    new: str


Change = Put | Delete | Rename


@dataclass(frozen=True)
class FileContent:
    """A file's bytes as stored at a given commit."""

    path: str
    data: bytes
    blob: str
    commit: str

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")

    @property
    def is_binary(self) -> bool:
        # Same heuristic as Git: a NUL byte in the first 8000 bytes.
        return b"\0" in self.data[:8000]


@dataclass(frozen=True)
class TreeEntry:
    """One entry of a tree listing."""

    name: str
    path: str
    kind: Literal["blob", "tree"]
    size: int | None
    oid: str


@dataclass(frozen=True)
class CommitInfo:
    """Everything the UI shows about one commit."""

    oid: str
    short: str
    summary: str
    message: str
    author: Author
    authored_at: datetime
    committer: Author
    committed_at: datetime
    parents: tuple[str, ...]
    co_authors: tuple[Author, ...] = ()

    @property
    def byline(self) -> str:
        """The author and co-authors' names, as a history row shows them."""
        return ", ".join([self.author.name, *(a.name for a in self.co_authors)])


@dataclass(frozen=True)
class HistoryPage:
    """A page of history; pass ``next_cursor`` as ``after`` to get the next one."""

    commits: list[CommitInfo]
    next_cursor: str | None


@dataclass(frozen=True)
class BranchInfo:
    name: str
    head: str
    is_default: bool
    updated_at: datetime
    author: Author


@dataclass(frozen=True)
class TagInfo:
    """A tag; message/tagger/created_at are None for lightweight tags."""

    name: str
    target: str
    message: str | None
    tagger: Author | None
    created_at: datetime | None


@dataclass(frozen=True)
class BlameLine:
    line_no: int
    text: str
    commit: str
    author: Author
    authored_at: datetime


@dataclass(frozen=True)
class ConflictFile:
    """One conflicted path: ``ours`` is the branch head's version, ``theirs`` the caller's."""

    path: str
    base: bytes | None
    ours: bytes | None
    theirs: bytes | None


@dataclass(frozen=True)
class SaveResult:
    """``merged`` is True when the branch had moved and the change was merged cleanly."""

    commit: str
    merged: bool


@dataclass(frozen=True)
class WordSpan:
    kind: Literal["equal", "insert", "delete"]
    text: str


@dataclass(frozen=True)
class DiffLine:
    """One line of a hunk.

    ``words`` is set only on a changed line paired with its counterpart: for a deleted
    line it holds equal/delete spans, for an added line equal/insert spans, so each side
    can be rendered with its own highlight.
    """

    kind: Literal["context", "add", "delete"]
    old_no: int | None
    new_no: int | None
    text: str
    words: list[WordSpan] | None = None


@dataclass(frozen=True)
class Hunk:
    header: str
    old_start: int
    old_lines: int
    new_start: int
    new_lines: int
    lines: list[DiffLine] = field(default_factory=list)


@dataclass(frozen=True)
class FileDiff:
    old_path: str | None
    new_path: str | None
    status: Literal["added", "deleted", "modified", "renamed"]
    additions: int
    deletions: int
    binary: bool
    hunks: list[Hunk] = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.new_path or self.old_path or ""


@dataclass(frozen=True)
class Diff:
    old: str
    new: str
    files: list[FileDiff] = field(default_factory=list)

    @property
    def additions(self) -> int:
        return sum(f.additions for f in self.files)

    @property
    def deletions(self) -> int:
        return sum(f.deletions for f in self.files)
