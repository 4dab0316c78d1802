"""Branch administration beyond create: the list with ahead/behind, rename, guarded delete.

Every ref move here is recorded with :func:`record_ref_updates`, so merge requests,
live rooms and search hear about a renamed or deleted branch exactly as they hear
about a push. Protection follows :func:`app.documents.protection.protection_for`:
the default branch is never renamed or deleted, a protected branch is never
deleted, and only people who may protect branches may rename a protected one.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import gitstore
from app import analytics
from app.accounts.models import User
from app.activity.services import record_ref_updates
from app.auth.permissions import Action, require
from app.documents import services as documents
from app.documents.models import Document
from app.documents.protection import is_valid_ref_name, protection_for

BRANCH_PREFIX = "refs/heads/"


class BranchError(documents.DocumentError):
    """A refused branch operation; ``code`` is the API's error code."""

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class BranchRow:
    """A branch as the list shows it: ahead/behind are None for the default branch."""

    info: gitstore.BranchInfo
    ahead: int | None
    behind: int | None
    protected: bool

    @property
    def name(self) -> str:
        return self.info.name


def list_branches(document: Document) -> list[BranchRow]:
    """Default branch first, then most recently changed, with ahead/behind the default."""
    repo = documents.repo(document)
    default = document.default_branch
    rows = []
    for info in repo.branches():
        ahead = behind = None
        if not info.is_default:
            # The default branch may be missing (an empty repository): no numbers then.
            with contextlib.suppress(gitstore.GitStoreError):
                ahead, behind = repo.ahead_behind(info.name, default)
        protected = protection_for(document, info.name) is not None
        rows.append(BranchRow(info, ahead, behind, protected))
    return rows


def create_branch(actor: User, document: Document, name: str, from_ref: str) -> str:
    """Create ``name`` at any version (branch, tag or commit id); returns its head."""
    head = documents.create_branch(actor, document, name, from_ref)
    record_ref_updates(
        document, actor, [(BRANCH_PREFIX + name, gitstore.ZERO_OID, head)], source="web"
    )
    analytics.track("branch_created", {"document": document.slug}, user=actor)
    return head


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not is_valid_ref_name(name) or name == "HEAD":
        raise BranchError(
            f"{name!r} is not a valid branch name: use letters, digits, '.', '-', '_' and '/'.",
            "invalid_ref_name",
        )
    return name


def rename_branch(actor: User, document: Document, old: str, new: str) -> str:
    """Rename ``old`` to ``new`` keeping its head; returns the new name.

    Never the default branch; renaming a protected branch, or to a protected name,
    needs the right to protect branches.
    """
    grant = require(actor, Action.CREATE_BRANCH, document)
    new = _check_name(new)
    if old == document.default_branch:
        raise BranchError("The default branch cannot be renamed.", "default_branch")
    repo = documents.repo(document)
    try:
        head = repo.head(old)  # RefNotFound (404) for an unknown branch
    except gitstore.InvalidRefName:
        raise BranchError(f"{old!r} is not a valid branch name.", "invalid_ref_name") from None
    if new == old:
        return new
    guarded = protection_for(document, old) or protection_for(document, new)
    if guarded is not None and not grant.allows(Action.PROTECT_BRANCH):
        which = old if protection_for(document, old) else new
        raise BranchError(
            f"{which!r} is protected: only maintainers can rename it or rename onto it.",
            "protected_branch",
        )
    _rename(repo, old, new, head)
    record_ref_updates(
        document,
        actor,
        [
            (BRANCH_PREFIX + old, head, gitstore.ZERO_OID),
            (BRANCH_PREFIX + new, gitstore.ZERO_OID, head),
        ],
        source="web",
    )
    return new


def _rename(repo: gitstore.Document, old: str, new: str, head: str) -> None:
    """gitstore's rename, its refusals turned into messages a person can act on.

    The checks above use the document's row; gitstore checks the repository itself
    (its HEAD, the refs under lock), so each refusal can still come from there.
    """
    try:
        repo.rename_branch(old, new, expected=head)
    except gitstore.BranchExists:
        raise BranchError(f"A branch named {new!r} already exists.", "branch_exists") from None
    except gitstore.CannotRenameDefaultBranch:
        raise BranchError("The default branch cannot be renamed.", "default_branch") from None
    except gitstore.InvalidRefName:
        raise BranchError(
            f"{new!r} is not a valid branch name: use letters, digits, '.', '-', '_' and '/'.",
            "invalid_ref_name",
        ) from None
    except gitstore.RefConflict:
        raise BranchError(
            f"Another change to {old!r} or {new!r} got there first (a save, a push or "
            "another rename). Nothing was renamed; reload the branch list and try again.",
            "conflict",
        ) from None


def delete_branch(actor: User, document: Document, name: str) -> None:
    """Delete a branch that is neither the default nor protected."""
    require(actor, Action.CREATE_BRANCH, document)
    if name == document.default_branch:
        raise BranchError("The default branch cannot be deleted.", "default_branch")
    repo = documents.repo(document)
    head = repo.head(name)  # RefNotFound (404) for an unknown branch
    if protection_for(document, name) is not None:
        raise BranchError(
            f"{name!r} is protected and cannot be deleted; remove its protection rule first.",
            "protected_branch",
        )
    repo.delete_branch(name, expected=head)
    record_ref_updates(
        document, actor, [(BRANCH_PREFIX + name, head, gitstore.ZERO_OID)], source="web"
    )
