"""The one exception tree of gitstore, and the one place pygit2 errors are translated.

Callers (the web app) must never need to import pygit2 to handle a failure, so every
pygit2 exception that can escape a public method is turned into a GitStoreError here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pygit2

if TYPE_CHECKING:
    from .types import ConflictFile


class GitStoreError(Exception):
    """Base class for every error raised by gitstore."""


class DocumentNotFound(GitStoreError, KeyError):
    """No document repository exists for that id."""

    def __str__(self) -> str:  # KeyError would repr() the message otherwise
        return Exception.__str__(self)


class DocumentExists(GitStoreError, ValueError):
    """A document with that id already exists."""


class RefNotFound(GitStoreError, KeyError):
    """Unknown branch, tag, object id or revision."""

    def __str__(self) -> str:
        return Exception.__str__(self)


class PathNotFound(GitStoreError, KeyError):
    """No such file (or directory) at that commit."""

    def __str__(self) -> str:
        return Exception.__str__(self)


class InvalidPath(GitStoreError, ValueError):
    """A path that could escape the tree, touch .git, or is otherwise malformed."""


class InvalidRefName(GitStoreError, ValueError):
    """A branch or tag name Git would not accept."""


class BranchExists(GitStoreError, ValueError):
    """Creating a branch that already exists (branches are never silently moved)."""


class TagExists(GitStoreError, ValueError):
    """Creating a tag that already exists (tags are never moved)."""


class CannotDeleteDefaultBranch(GitStoreError):
    """The default branch (HEAD) is protected from deletion."""


class CannotRenameDefaultBranch(CannotDeleteDefaultBranch):
    """Renaming the default branch would leave HEAD pointing at nothing."""


class NothingToCommit(GitStoreError):
    """The change set leaves the tree unchanged, so no commit was made."""


class RefConflict(GitStoreError):
    """A compare-and-swap on a ref failed: someone else moved it first."""

    def __init__(self, ref: str, expected: str | None, actual: str | None) -> None:
        super().__init__(
            f"{ref} moved: expected {expected or 'nothing'}, found {actual or 'nothing'}"
        )
        self.ref = ref
        self.expected = expected
        self.actual = actual


class InvalidCursor(GitStoreError, ValueError):
    """A history cursor that this library did not make (or names unknown commits)."""


class MergeConflict(GitStoreError):
    """A three-way merge (save/revert) could not be completed automatically."""

    def __init__(self, conflicts: list[ConflictFile]) -> None:
        self.conflicts = conflicts
        self.paths = [c.path for c in conflicts]
        super().__init__("merge conflict in " + ", ".join(self.paths))


class NotFastForward(GitStoreError):
    """A fast-forward merge was asked for, but the target has commits the source lacks."""


def _is_cas_failure(exc: Exception) -> bool:
    """libgit2 reports a lost compare-and-swap as GIT_EMODIFIED or a held lock file."""
    text = str(exc).lower()
    return (
        "old reference value does not match" in text
        or "failed to lock" in text
        or "current tip is not the first parent" in text
        or "locked" in text
    )


@contextmanager
def translate(
    *,
    ref: str | None = None,
    expected: str | None = None,
    actual: Callable[[], str | None] | None = None,
    exists: type[GitStoreError] | None = None,
) -> Iterator[None]:
    """Turn pygit2 exceptions raised inside the block into GitStoreError subclasses.

    When ``ref`` is given the block is a ref update: a lost race becomes RefConflict.
    ``actual`` is a zero-argument callable that re-reads the ref for the error message.
    ``exists`` is the error to raise when libgit2 refuses to overwrite an existing object.
    """
    try:
        yield
    except GitStoreError:
        raise
    except pygit2.AlreadyExistsError as exc:
        if exists is not None:
            raise exists(str(exc)) from exc
        if ref is not None:
            raise RefConflict(ref, expected, actual() if actual else None) from exc
        raise GitStoreError(str(exc)) from exc
    except pygit2.InvalidSpecError as exc:
        raise InvalidRefName(str(exc)) from exc
    except pygit2.GitError as exc:
        if ref is not None and _is_cas_failure(exc):
            raise RefConflict(ref, expected, actual() if actual else None) from exc
        raise GitStoreError(str(exc)) from exc
    except OSError as exc:
        # A ref another writer holds locked (``<ref>.lock``) reaches pygit2 as an OSError
        # when deleting: the same lost race as above.
        if ref is not None and _is_cas_failure(exc):
            raise RefConflict(ref, expected, actual() if actual else None) from exc
        raise
