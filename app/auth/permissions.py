"""The one permission module.

Pages, the JSON API, the websocket and git over HTTP all ask :func:`can` (or
:func:`require`) and nothing else. A role is a rank: each role may do what the
roles below it may do. Site admins may do everything; public documents give
every visitor, signed in or not, the viewer's rights.

Without read access the answer to the caller is *404*, not 403, so that the
existence of a private document never leaks.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from app import db

if TYPE_CHECKING:
    from app.accounts.models import User
    from app.documents.models import Document


class Role(enum.IntEnum):
    """Roles on a document, ordered by what they may do."""

    NONE = 0
    VIEWER = 10
    REVIEWER = 20
    EDITOR = 30
    MAINTAINER = 40
    OWNER = 50

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> Role:
        try:
            role = cls[value.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown role {value!r}") from None
        if role is cls.NONE:
            raise ValueError("role 'none' cannot be granted")
        return role


#: Roles that can be granted to a member (ownership moves by transfer only).
GRANTABLE_ROLES = (Role.VIEWER, Role.REVIEWER, Role.EDITOR, Role.MAINTAINER)


class Action(enum.Enum):
    """Everything a person can do to a document; :attr:`least_role` is the role needed.

    Values are the actions' own names: several actions need the same role, and
    with the role as the value Python's Enum would make them aliases of one
    another (``Action.APPROVE is Action.COMMENT``), hiding them from iteration
    and mislabelling denials.
    """

    READ = "read"  # view, history, diffs, blame, raw, clone
    COMMENT = "comment"
    APPROVE = "approve"
    EDIT = "edit"  # save, upload, restore, revert, edit live
    CREATE_BRANCH = "create_branch"
    PUSH = "push"  # unprotected branches; protection rules narrow it further
    OPEN_MERGE_REQUEST = "open_merge_request"
    CLOSE_MERGE_REQUEST = "close_merge_request"  # authors may also close their own
    RESOLVE_THREAD = "resolve_thread"
    MERGE = "merge"
    PROTECT_BRANCH = "protect_branch"
    TAG_RELEASE = "tag_release"
    MANAGE_MEMBERS = "manage_members"
    EDIT_SETTINGS = "edit_settings"  # title, slug
    CHANGE_VISIBILITY = "change_visibility"
    DELETE_DOCUMENT = "delete_document"
    DELETE_RELEASE = "delete_release"  # site admins only: tags are immutable

    @property
    def least_role(self) -> Role:
        return _LEAST_ROLE[self]


_LEAST_ROLE: dict[Action, Role] = {
    Action.READ: Role.VIEWER,
    Action.COMMENT: Role.REVIEWER,
    Action.APPROVE: Role.REVIEWER,
    Action.EDIT: Role.EDITOR,
    Action.CREATE_BRANCH: Role.EDITOR,
    Action.PUSH: Role.EDITOR,
    Action.OPEN_MERGE_REQUEST: Role.EDITOR,
    Action.CLOSE_MERGE_REQUEST: Role.EDITOR,
    Action.RESOLVE_THREAD: Role.REVIEWER,
    Action.MERGE: Role.MAINTAINER,
    Action.PROTECT_BRANCH: Role.MAINTAINER,
    Action.TAG_RELEASE: Role.MAINTAINER,
    Action.MANAGE_MEMBERS: Role.MAINTAINER,
    Action.EDIT_SETTINGS: Role.MAINTAINER,
    Action.CHANGE_VISIBILITY: Role.OWNER,
    Action.DELETE_DOCUMENT: Role.OWNER,
    Action.DELETE_RELEASE: Role.OWNER,  # and see _SITE_ADMIN_ONLY
}

#: Actions no document role grants, however high: only site admins may do them.
_SITE_ADMIN_ONLY = frozenset({Action.DELETE_RELEASE})


class PermissionDenied(Exception):
    """The actor may not do this. ``hide`` means answer as if the document did not exist."""

    def __init__(self, action: Action, *, hide: bool) -> None:
        super().__init__(f"not allowed: {action.name.lower()}")
        self.action = action
        self.hide = hide


@dataclass(frozen=True)
class Grant:
    """What one actor holds on one document, computed once per request."""

    role: Role
    is_admin: bool = False

    def allows(self, action: Action) -> bool:
        if self.is_admin:
            return True
        return action not in _SITE_ADMIN_ONLY and self.role >= action.least_role


def role_of(actor: User | None, document: Document) -> Role:
    """The actor's own role on the document, public access included."""
    from app.documents.models import Membership

    if actor is not None and actor.is_active:
        if document.owner_id == actor.id:
            return Role.OWNER
        stored = db.session().scalar(
            select(Membership.role).where(
                Membership.document_id == document.id, Membership.user_id == actor.id
            )
        )
        if stored:
            try:
                return max(Role.parse(stored), Role.VIEWER if document.is_public else Role.NONE)
            except ValueError:  # an unknown stored role grants nothing beyond public access
                pass
    return Role.VIEWER if document.is_public else Role.NONE


def grant_for(actor: User | None, document: Document) -> Grant:
    is_admin = bool(actor is not None and actor.is_active and actor.is_admin)
    return Grant(role=role_of(actor, document), is_admin=is_admin)


def can(actor: User | None, action: Action, document: Document) -> bool:
    return grant_for(actor, document).allows(action)


def require(actor: User | None, action: Action, document: Document) -> Grant:
    """Return the actor's grant or raise :class:`PermissionDenied`.

    Without read access the denial is hidden (callers answer 404).
    """
    grant = grant_for(actor, document)
    if not grant.allows(action):
        raise PermissionDenied(action, hide=not grant.allows(Action.READ))
    return grant


def can_create_document(actor: User | None) -> bool:
    return actor is not None and actor.is_active


def can_administer_site(actor: User | None) -> bool:
    return actor is not None and actor.is_active and actor.is_admin
