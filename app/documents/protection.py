"""Branch protection and the one rule for moving refs by push.

A protected branch accepts direct pushes only from the roles its rule allows, and
never a non-fast-forward update or a deletion. A document's default branch is
protected even without a row: it behaves as if it had a rule pushable by maintainers
and above. Rules are rows so that later features (required approvals for merge
requests, status checks) can add columns to :class:`BranchProtection` and checks to
:func:`can_update_ref` without another model.

:func:`can_update_ref` follows the permission module: it asks
:func:`app.auth.permissions.grant_for` and returns None when allowed or the reason
the git client prints next to ``! [remote rejected]``. Both the check before git runs
and the authoritative pre-receive hook call it.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from app import db
from app.auth.permissions import Action, Grant, Role, grant_for, require
from app.db import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from app.accounts.models import User
    from app.documents.models import Document

BRANCH_PREFIX = "refs/heads/"
TAG_PREFIX = "refs/tags/"
#: A conservative subset of git's ref-name rules (git check-ref-format) for pushed names.
_REF_PART = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._+@-]*")


class BranchProtection(Base):
    """A protection rule: ``pattern`` is a branch name or an fnmatch pattern (``release/*``)."""

    __tablename__ = "branch_protections"
    __table_args__ = (UniqueConstraint("document_id", "pattern"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    pattern: Mapped[str] = mapped_column(String(255))
    #: The least role that may push directly (a Role label: editor, maintainer, owner).
    push_role: Mapped[str] = mapped_column(String(20), default=Role.MAINTAINER.label)
    #: Merge rules for requests into a matching branch.
    required_approvals: Mapped[int] = mapped_column(Integer, default=0)
    block_unresolved: Mapped[bool] = mapped_column(Boolean, default=False)
    block_behind: Mapped[bool] = mapped_column(Boolean, default=False)
    #: New commits on the source dismiss earlier approvals.
    reset_approvals: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The least role that may edit live on the branch (None: same as push_role).
    live_role: Mapped[str | None] = mapped_column(String(20), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def least_push_role(self) -> Role:
        return Role.parse(self.push_role)


@dataclass(frozen=True)
class Protection:
    """The rule in force for one branch (an implicit one for the default branch).

    ``pattern`` is None for the default branch's implicit rule, which asks nothing of
    merge requests (0 approvals, no blocks) and leaves live editing to editors: only
    a rule someone wrote can make merging or editing stricter.
    """

    branch: str
    push_role: Role
    required_approvals: int = 0
    block_unresolved: bool = False
    block_behind: bool = False
    reset_approvals: bool = False
    #: The least role that may edit the branch live.
    live_role: Role = Role.EDITOR
    pattern: str | None = None


def list_rules(document: Document) -> list[BranchProtection]:
    """The document's written rules, exact names first, then patterns, by name."""
    rules = db.session().scalars(
        select(BranchProtection).where(BranchProtection.document_id == document.id)
    )
    return sorted(rules, key=lambda r: (_is_pattern(r.pattern), r.pattern))


def _is_pattern(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def _rule_for(rules: list[BranchProtection], branch: str) -> BranchProtection | None:
    matching = [r for r in rules if r.pattern == branch or fnmatch.fnmatchcase(branch, r.pattern)]
    exact = [r for r in matching if r.pattern == branch]
    return (exact or matching or [None])[0]


def protection_for(document: Document, branch: str) -> Protection | None:
    """The rule protecting ``branch``, or None. Exact names win over patterns."""
    rule = _rule_for(list_rules(document), branch)
    if rule is not None:
        push_role = rule.least_push_role
        return Protection(
            branch,
            push_role,
            required_approvals=max(0, rule.required_approvals or 0),
            block_unresolved=bool(rule.block_unresolved),
            block_behind=bool(rule.block_behind),
            reset_approvals=bool(rule.reset_approvals),
            live_role=Role.parse(rule.live_role) if rule.live_role else push_role,
            pattern=rule.pattern,
        )
    if branch == document.default_branch:
        return Protection(branch, Role.MAINTAINER)
    return None


def can_edit_live(grant: Grant, document: Document, branch: str) -> bool:
    """Whether the holder of ``grant`` may type into the live editor of ``branch``.

    EDIT first (the permission module), then the branch's rule: a rule written for a
    branch names the least role that may edit it live (its push role by default).
    """
    if not grant.allows(Action.EDIT):
        return False
    rule = protection_for(document, branch)
    return rule is None or grant.is_admin or grant.role >= rule.live_role


def is_valid_ref_name(name: str) -> bool:
    """A branch or tag short name git and Quire both accept (no ``..``, no ``.lock``)."""
    if not name or len(name) > 200 or ".." in name or "@{" in name or name.endswith("."):
        return False
    return all(
        _REF_PART.fullmatch(part) and not part.endswith(".lock") and not part.startswith(".")
        for part in name.split("/")
    )


def _zero(oid: str) -> bool:
    return set(oid) == {"0"}


def can_update_ref(
    actor: User | None,
    document: Document,
    refname: str,
    old: str,
    new: str,
    is_fast_forward: bool | None,
    *,
    grant: Grant | None = None,
) -> str | None:
    """None if ``actor`` may move ``refname`` from ``old`` to ``new``, else the reason.

    ``is_fast_forward`` is None when it cannot be known yet (before git has received
    the pack); the pre-receive hook passes the real answer.
    """
    grant = grant or grant_for(actor, document)
    if not grant.allows(Action.READ):
        return "repository not found"
    if not grant.allows(Action.PUSH):
        return "you do not have permission to push to this document"
    creating, deleting = _zero(old), _zero(new)
    if refname.startswith("refs/merge-requests/"):
        return "refs/merge-requests/* are managed by Quire; push a branch instead"
    if refname.startswith(TAG_PREFIX):
        if not is_valid_ref_name(refname[len(TAG_PREFIX) :]):
            return "invalid tag name"
        if not grant.allows(Action.TAG_RELEASE):
            return "only maintainers can create or delete tags"
        if not creating and not deleting:
            return "tags are never moved; create a new tag instead"
        if deleting and not grant.allows(Action.DELETE_RELEASE):
            # Releases are immutable: the same rule as the releases page.
            return "only site admins can delete tags"
        return None
    if not refname.startswith(BRANCH_PREFIX):
        return "only branches (refs/heads/*) and tags (refs/tags/*) can be pushed"
    branch = refname[len(BRANCH_PREFIX) :]
    if not is_valid_ref_name(branch):
        return "invalid branch name"
    rule = protection_for(document, branch)
    if rule is None:
        return None
    if deleting:
        return f"protected branch {branch!r} cannot be deleted"
    if not (grant.is_admin or grant.role >= rule.push_role):
        return (
            f"branch {branch!r} is protected: only {rule.push_role.label}s and above "
            "can push to it directly; push another branch and open a merge request"
        )
    if not creating and is_fast_forward is False:
        return f"non-fast-forward updates of protected branch {branch!r} are not allowed"
    return None


# --- managing the rules ------------------------------------------------------------

#: Roles a rule may name for pushing or live editing.
RULE_ROLES = (Role.EDITOR, Role.MAINTAINER, Role.OWNER)
MAX_REQUIRED_APPROVALS = 20


class ProtectionError(ValueError):
    """A rule the form or API sent cannot be saved; the message is shown as is."""


def _is_valid_pattern(pattern: str) -> bool:
    """A branch name, or one with fnmatch wildcards in place of some characters."""
    return is_valid_ref_name(re.sub(r"[*?\[\]]", "x", pattern))


def _rule_role(value: str | None, what: str) -> str:
    try:
        role = Role.parse(value or "")
    except ValueError:
        role = Role.NONE
    if role not in RULE_ROLES:
        raise ProtectionError(f"{what} is one of: editor, maintainer, owner.")
    return role.label


def save_rule(
    actor: User,
    document: Document,
    *,
    pattern: str,
    push_role: str,
    live_role: str | None = None,
    required_approvals: int = 0,
    block_unresolved: bool = False,
    block_behind: bool = False,
    reset_approvals: bool = False,
    rule_id: int | None = None,
) -> BranchProtection:
    """Add a rule, or change the rule ``rule_id`` (PROTECT_BRANCH)."""
    require(actor, Action.PROTECT_BRANCH, document)
    pattern = pattern.strip()
    if not pattern or not _is_valid_pattern(pattern):
        raise ProtectionError(
            "Name a branch (main) or a pattern (release/*); letters, digits, '.', '_', '-', '/'."
        )
    if not 0 <= required_approvals <= MAX_REQUIRED_APPROVALS:
        raise ProtectionError(f"Required approvals are between 0 and {MAX_REQUIRED_APPROVALS}.")
    session = db.session()
    if rule_id is None:
        rule = BranchProtection(document_id=document.id)
    else:
        rule = session.get(BranchProtection, rule_id) if 0 < rule_id < 2**31 else None
        if rule is None or rule.document_id != document.id:
            raise ProtectionError("That rule no longer exists.")
    clash = session.scalar(
        select(BranchProtection.id).where(
            BranchProtection.document_id == document.id, BranchProtection.pattern == pattern
        )
    )
    if clash is not None and clash != rule.id:
        raise ProtectionError(f"There is already a rule for {pattern!r}.")
    rule.pattern = pattern
    rule.push_role = _rule_role(push_role, "Who may push")
    rule.live_role = _rule_role(live_role, "Who may edit live") if live_role else None
    rule.required_approvals = required_approvals
    rule.block_unresolved = block_unresolved
    rule.block_behind = block_behind
    rule.reset_approvals = reset_approvals
    session.add(rule)
    session.commit()
    return rule


def delete_rule(actor: User, document: Document, rule_id: int) -> None:
    """Remove a rule (PROTECT_BRANCH). The default branch stays implicitly protected."""
    require(actor, Action.PROTECT_BRANCH, document)
    session = db.session()
    rule = session.get(BranchProtection, rule_id) if 0 < rule_id < 2**31 else None
    if rule is None or rule.document_id != document.id:
        raise ProtectionError("That rule no longer exists.")
    session.delete(rule)
    session.commit()
