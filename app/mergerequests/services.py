"""Merge requests themselves: opening, listing, refreshing, merging, closing, reverting.

Services take the acting user first (``actor``), ask :mod:`app.auth.permissions`
themselves, own their transaction and never read the request, so the pages, the JSON
API and the ``ref_updated`` receiver share one set of rules.

Git holds the content. A request pins the head it shows at
``refs/merge-requests/<n>/head`` (moved by compare-and-swap only), so what reviewers
saw survives a force-push or a deleted branch; the merge itself is
:meth:`gitstore.Document.merge` with the target head the check was made against,
so a target that moves in between fails the merge instead of being overwritten.

The review conversation lives in :mod:`app.mergerequests.reviews`; this module asks
it four questions for mergeability and tells it when the head moved.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pygit2
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

import gitstore
from app import db
from app.accounts.models import User
from app.activity.services import record_ref_updates
from app.auth.permissions import Action, PermissionDenied, grant_for, require
from app.db import utcnow
from app.documents import services as documents
from app.documents.models import Document
from app.documents.protection import Protection, protection_for
from app.mergerequests.models import (
    MERGE_STYLES,
    STATES,
    MergeRequest,
    MergeRequestEvent,
    MergeSettings,
    Review,
    ReviewRequest,
)
from app.rendering.markdown import render_markdown

log = logging.getLogger(__name__)

MAX_TITLE = 200
MAX_DESCRIPTION = 65_536
ZERO = "0" * 40
BRANCH_PREFIX = "refs/heads/"

#: Why a request cannot be merged, for people (keys are MergeRequest.mergeability values).
REASONS = {
    "mergeable": "Ready to merge.",
    "draft": "This request is a draft; mark it ready for review first.",
    "up_to_date": "The target already contains every change of the source branch.",
    "conflicts": "The branches change the same words; resolve the conflicts first.",
    "needs_approvals": "More approvals are needed (and no reviewer may be asking for changes).",
    "unresolved_threads": "Some review threads are still unresolved.",
    "behind": "The target branch has commits the source branch lacks; update the source first.",
    "checking": "Mergeability is being checked.",
    "closed": "The request is closed.",
    "merged": "The request is already merged.",
    "missing_branch": "The source or target branch no longer exists.",
}


class MergeRequestError(ValueError):
    """A user-caused problem (bad branch, bad title, wrong state); shown as is."""


class NotMergeable(Exception):
    """The request cannot be merged now; ``reason`` is a mergeability value."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(message or REASONS.get(reason, reason))
        self.reason = reason
        self.message = message or REASONS.get(reason, reason)


def _reviews() -> ModuleType | None:
    """The review half, once it exists (it is developed alongside this module)."""
    try:
        from app.mergerequests import reviews
    except ImportError:
        return None
    return reviews


def _ask(name: str, mr: MergeRequest, default: Any) -> Any:
    reviews = _reviews()
    function = getattr(reviews, name, None) if reviews is not None else None
    return default if function is None else function(mr)


def repo(document: Document) -> gitstore.Document:
    return documents.repo(document)


# --- settings ------------------------------------------------------------------------


def get_settings(document: Document) -> MergeSettings:
    """The document's merge settings (an unsaved default row until someone changes them)."""
    found = db.session().get(MergeSettings, document.id)
    return found or MergeSettings(document_id=document.id, default_style="merge", next_number=1)


def set_default_style(actor: User, document: Document, style: str) -> MergeSettings:
    require(actor, Action.PROTECT_BRANCH, document)
    if style not in MERGE_STYLES:
        raise MergeRequestError("The merge style is merge, squash or ff.")
    session = db.session()
    settings = session.get(MergeSettings, document.id)
    if settings is None:
        settings = MergeSettings(document_id=document.id, next_number=_next_free(document))
        session.add(settings)
    settings.default_style = style
    session.commit()
    return settings


def _next_free(document: Document) -> int:
    top = db.session().scalar(
        select(func.max(MergeRequest.number)).where(MergeRequest.document_id == document.id)
    )
    return (top or 0) + 1


def _allocate_number(document: Document) -> int:
    """The next request number, under a row lock (PostgreSQL) or SQLite's write lock."""
    session = db.session()
    for _ in range(3):
        settings = session.scalar(
            select(MergeSettings).where(MergeSettings.document_id == document.id).with_for_update()
        )
        if settings is None:
            settings = MergeSettings(
                document_id=document.id, default_style="merge", next_number=_next_free(document)
            )
            session.add(settings)
            try:
                session.flush()
            except IntegrityError:  # someone created it first: lock theirs
                session.rollback()
                continue
        number = max(settings.next_number or 1, _next_free(document))
        settings.next_number = number + 1
        return number
    raise MergeRequestError("Could not number the request; try again.")


# --- the pinned head -------------------------------------------------------------------


def _pin_head(git: gitstore.Document, mr: MergeRequest, expected: str | None, new: str) -> None:
    """Move ``refs/merge-requests/<n>/head`` from ``expected`` (None: absent) to ``new``."""
    refs = git.repo.references
    name = mr.head_ref
    try:
        if expected is None:
            refs.create(name, pygit2.Oid(hex=new), force=False)
            return
        ref = refs.get(name)
        if ref is None:
            refs.create(name, pygit2.Oid(hex=new), force=False)
            return
        if str(ref.target) != expected:
            raise gitstore.RefConflict(name, expected, str(ref.target))
        ref.set_target(pygit2.Oid(hex=new), f"merge request !{mr.number}: new head")
    except (pygit2.AlreadyExistsError, ValueError) as exc:
        current = refs.get(name)
        raise gitstore.RefConflict(
            name, expected, None if current is None else str(current.target)
        ) from exc


def _branch_head(git: gitstore.Document, branch: str) -> str | None:
    try:
        return git.head(branch)
    except (gitstore.RefNotFound, gitstore.InvalidRefName):
        return None


# --- opening, reading, editing -----------------------------------------------------------


def _clean_title(title: str) -> str:
    title = " ".join((title or "").split())
    if not title:
        raise MergeRequestError("Give the merge request a title.")
    if len(title) > MAX_TITLE:
        raise MergeRequestError(f"Titles are at most {MAX_TITLE} characters.")
    return title


def _clean_description(description: str) -> str:
    description = (description or "").replace("\r\n", "\n").strip()
    if len(description) > MAX_DESCRIPTION:
        raise MergeRequestError(f"Descriptions are at most {MAX_DESCRIPTION} characters.")
    return description


def open_merge_request(
    actor: User,
    document: Document,
    *,
    source: str,
    target: str,
    title: str,
    description: str = "",
    draft: bool = False,
) -> MergeRequest:
    """Propose ``source`` into ``target``; both must exist and differ."""
    require(actor, Action.OPEN_MERGE_REQUEST, document)
    title = _clean_title(title)
    description = _clean_description(description)
    source, target = (source or "").strip(), (target or "").strip()
    if not source or not target:
        raise MergeRequestError("Choose a source and a target branch.")
    if source == target:
        raise MergeRequestError("The source and target branches must differ.")
    git = repo(document)
    head = _branch_head(git, source)
    if head is None:
        raise MergeRequestError(f"There is no branch {source!r}.")
    if _branch_head(git, target) is None:
        raise MergeRequestError(f"There is no branch {target!r}.")
    session = db.session()
    number = _allocate_number(document)
    mr = MergeRequest(
        document_id=document.id,
        number=number,
        title=title,
        description=description,
        author_id=actor.id,
        source_branch=source,
        target_branch=target,
        state="open",
        draft=bool(draft),
        head_oid=head,
        conflicts=[],
        mergeability="checking",
    )
    mr.document = document
    session.add(mr)
    session.flush()
    # The ref first: a number is never reused, so a leftover ref can only be ours.
    try:
        _pin_head(git, mr, None, head)
    except gitstore.RefConflict:
        _pin_head(git, mr, _current_pin(git, mr), head)
    record_event(mr, "opened", actor, source=source, target=target, head=head)
    _recompute(mr, git)
    session.commit()
    _track("mr_opened", document, actor)
    return mr


def _current_pin(git: gitstore.Document, mr: MergeRequest) -> str | None:
    ref = git.repo.references.get(mr.head_ref)
    return None if ref is None else str(ref.target)


#: Numbers and ids are SQL integers: anything larger cannot exist (and would not bind).
MAX_SQL_INT = 2**31 - 1


def get_merge_request(document: Document, number: int) -> MergeRequest | None:
    if not 0 < number <= MAX_SQL_INT:
        return None
    return db.session().scalar(
        select(MergeRequest).where(
            MergeRequest.document_id == document.id, MergeRequest.number == number
        )
    )


@dataclass(frozen=True)
class Listing:
    requests: list[MergeRequest]
    #: Per state, with the same author/reviewer filters applied.
    counts: dict[str, int] = field(default_factory=dict)


def list_merge_requests(
    actor: User | None,
    document: Document,
    *,
    state: str = "open",
    authored: bool = False,
    review_requested: bool = False,
    author: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Listing:
    """Requests of one document, newest first; ``state`` may be 'all'.

    ``authored`` and ``review_requested`` narrow to the actor's own requests or those
    awaiting their review; ``author`` to one person's (by username, as @mentions link).
    """
    require(actor, Action.READ, document)
    if state not in (*STATES, "all"):
        raise MergeRequestError("The state is open, merged, closed or all.")
    query = select(MergeRequest).where(MergeRequest.document_id == document.id)
    if authored:
        query = query.where(MergeRequest.author_id == (actor.id if actor else -1))
    if author:
        by_name = select(User.id).where(func.lower(User.username) == author.strip().lower())
        query = query.where(MergeRequest.author_id.in_(by_name))
    if review_requested:
        requested = select(ReviewRequest.merge_request_id).where(
            ReviewRequest.reviewer_id == (actor.id if actor else -1)
        )
        query = query.where(MergeRequest.id.in_(requested))
    session = db.session()
    filtered = query.subquery()
    counted = session.execute(select(filtered.c.state, func.count()).group_by(filtered.c.state))
    counts = {s: 0 for s in STATES}
    counts.update({row[0]: row[1] for row in counted})
    if state != "all":
        query = query.where(MergeRequest.state == state)
    rows = session.scalars(
        query.options(selectinload(MergeRequest.author), selectinload(MergeRequest.merged_by))
        .order_by(MergeRequest.number.desc())
        .limit(max(1, min(limit, 500)))
        .offset(offset)
    )
    return Listing(list(rows), counts)


def update(
    actor: User,
    mr: MergeRequest,
    *,
    title: str | None = None,
    description: str | None = None,
    draft: bool | None = None,
) -> MergeRequest:
    """Edit title, description or draft state (the author, or whoever may merge)."""
    _may_manage(actor, mr)
    changes: dict[str, Any] = {}
    if title is not None and _clean_title(title) != mr.title:
        mr.title = changes["title"] = _clean_title(title)
    if description is not None and _clean_description(description) != mr.description:
        mr.description = _clean_description(description)
        changes["description"] = True
    if draft is not None and bool(draft) != mr.draft:
        mr.draft = changes["draft"] = bool(draft)
    if changes:
        mr.updated_at = utcnow()
        record_event(mr, "edited", actor, **changes)
        if "draft" in changes:
            _recompute(mr, repo(mr.document))
        db.session().commit()
    return mr


def _may_manage(actor: User, mr: MergeRequest) -> None:
    """Authors may edit and close their own requests; others need CLOSE_MERGE_REQUEST."""
    grant = require(actor, Action.READ, mr.document)
    if actor.id == mr.author_id and grant.allows(Action.COMMENT):
        return
    if not grant.allows(Action.CLOSE_MERGE_REQUEST):
        raise PermissionDenied(Action.CLOSE_MERGE_REQUEST, hide=False)


def can_manage(actor: User | None, mr: MergeRequest) -> bool:
    if actor is None:
        return False
    try:
        _may_manage(actor, mr)
    except PermissionDenied:
        return False
    return True


def close(actor: User, mr: MergeRequest) -> MergeRequest:
    _may_manage(actor, mr)
    if mr.state != "open":
        raise MergeRequestError(f"The request is {mr.state}, not open.")
    mr.state = "closed"
    mr.closed_at = mr.updated_at = utcnow()
    record_event(mr, "closed", actor)
    db.session().commit()
    return mr


def reopen(actor: User, mr: MergeRequest) -> MergeRequest:
    _may_manage(actor, mr)
    if mr.state != "closed":
        raise MergeRequestError(f"Only closed requests can be reopened; this one is {mr.state}.")
    git = repo(mr.document)
    if _branch_head(git, mr.source_branch) is None or _branch_head(git, mr.target_branch) is None:
        raise MergeRequestError("The source or target branch no longer exists.")
    mr.state = "open"
    mr.closed_at = None
    mr.updated_at = utcnow()
    record_event(mr, "reopened", actor)
    _refresh_head(mr, git, actor)
    _recompute(mr, git)
    db.session().commit()
    return mr


def description_html(mr: MergeRequest) -> str:
    return str(render_markdown(mr.description or ""))


# --- the timeline --------------------------------------------------------------------------


def record_event(mr: MergeRequest, kind: str, actor: User | None, **data: Any) -> MergeRequestEvent:
    """Add one timeline event to the session (the caller commits)."""
    event = MergeRequestEvent(
        merge_request_id=mr.id, kind=kind, actor_id=actor.id if actor else None, data=data
    )
    db.session().add(event)
    return event


def events(mr: MergeRequest) -> list[MergeRequestEvent]:
    return list(
        db.session().scalars(
            select(MergeRequestEvent)
            .where(MergeRequestEvent.merge_request_id == mr.id)
            .order_by(MergeRequestEvent.id)
        )
    )


# --- mergeability ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """Mergeability with the facts behind it (for the page's merge box)."""

    reason: str
    conflicts: tuple[str, ...]
    rule: Protection | None
    approvals: int
    required_approvals: int
    unresolved: int
    changes_requested: bool
    preview: Any = None

    @property
    def mergeable(self) -> bool:
        return self.reason == "mergeable"

    @property
    def message(self) -> str:
        if self.reason == "needs_approvals":
            if self.changes_requested:
                return "A reviewer asked for changes; they must approve before this can merge."
            return (
                f"{self.approvals} of {self.required_approvals} required approvals; "
                "more are needed."
            )
        if self.reason == "unresolved_threads":
            n = self.unresolved
            return f"{n} review thread{'s' if n != 1 else ''} still unresolved."
        if self.reason == "conflicts":
            return "Conflicts in " + ", ".join(self.conflicts) + "; resolve them to merge."
        return REASONS.get(self.reason, self.reason)


def _behind(git: gitstore.Document, target_head: str, source_head: str) -> bool:
    """True when the target has commits that are not in the source."""
    ahead, _ = git.ahead_behind(target_head, source_head)
    return ahead > 0


def check(mr: MergeRequest, git: gitstore.Document | None = None) -> Check:
    """Mergeability, in order: draft, up to date, conflicts, the target's rule, mergeable.

    The rule of the target branch (exact name, then pattern; the default branch has
    an implicit rule with no requirements) decides approvals, unresolved threads and
    whether a target that moved on blocks the merge.
    """
    git = git or repo(mr.document)
    rule = protection_for(mr.document, mr.target_branch)
    required = rule.required_approvals if rule is not None else 0
    approvals = _ask("approval_count", mr, 0)
    changes_requested = bool(_ask("has_changes_requested", mr, False))
    unresolved = _ask("unresolved_count", mr, 0)

    def result(reason: str, conflicts: tuple[str, ...] = (), preview: Any = None) -> Check:
        return Check(
            reason, conflicts, rule, approvals, required, unresolved, changes_requested, preview
        )

    if mr.state != "open":
        return result(mr.state)
    target_head = _branch_head(git, mr.target_branch)
    if target_head is None:
        return result("missing_branch")
    preview = git.preview_merge(target_head, mr.head_oid)
    conflicts = tuple(preview.conflicts)
    if mr.draft:
        return result("draft", conflicts, preview)
    if preview.up_to_date:
        return result("up_to_date", (), preview)
    if conflicts:
        return result("conflicts", conflicts, preview)
    reason = _rule_blocker(rule, approvals, required, changes_requested, unresolved)
    if reason is None and _blocks_behind(rule, git, mr):
        reason = "behind"
    return result(reason or "mergeable", conflicts, preview)


def _rule_blocker(
    rule: Protection | None, approvals: int, required: int, changes: bool, unresolved: int
) -> str | None:
    if approvals < required or changes:
        return "needs_approvals"
    if rule is not None and rule.block_unresolved and unresolved > 0:
        return "unresolved_threads"
    return None


def _recompute(mr: MergeRequest, git: gitstore.Document) -> Check:
    """Store the current mergeability on the row (the caller commits)."""
    if mr.state != "open":
        return check(mr, git)
    target_head = _branch_head(git, mr.target_branch)
    if target_head is not None:
        try:
            mr.base_oid = git.merge_base(target_head, mr.head_oid)
        except gitstore.GitStoreError:
            mr.base_oid = None
    result = check(mr, git)
    mr.mergeability = result.reason if result.reason in _STORED else "checking"
    mr.conflicts = list(result.conflicts)
    return result


_STORED = frozenset(
    ("mergeable", "conflicts", "needs_approvals", "unresolved_threads", "behind", "draft",
     "up_to_date", "checking")
)  # fmt: skip


def _refresh_head(mr: MergeRequest, git: gitstore.Document, actor: User | None) -> bool:
    """Follow the source branch: move the pinned head, record the push. True if it moved."""
    new = _branch_head(git, mr.source_branch)
    old = mr.head_oid
    if new is None or new == old:
        return False
    _pin_head(git, mr, _current_pin(git, mr), new)
    mr.head_oid = new
    mr.updated_at = utcnow()
    try:
        commits = git.commits_between(old, new, limit=50)
    except gitstore.GitStoreError:
        commits = []
    record_event(
        mr,
        "pushed",
        actor,
        old=old,
        new=new,
        commits=[{"oid": c.oid, "summary": c.summary} for c in commits],
    )
    target_head = _branch_head(git, mr.target_branch)
    if target_head is not None:
        with contextlib.suppress(gitstore.GitStoreError):
            mr.base_oid = git.merge_base(target_head, new)
    reviews = _reviews()
    if reviews is not None and hasattr(reviews, "on_new_head"):
        reviews.on_new_head(mr, old, new)
    return True


def refresh(mr: MergeRequest, actor: User | None = None) -> Check:
    """Bring the request up to date: its head, then its mergeability. Commits."""
    git = repo(mr.document)
    if mr.state == "open":
        _refresh_head(mr, git, actor)
    result = _recompute(mr, git)
    db.session().commit()
    return result


def on_ref_updated(
    document: Document,
    *,
    ref: str,
    old: str,
    new: str,
    actor: User | None = None,
    **_: Any,
) -> None:
    """Refresh every open request whose source or target branch moved. Never raises."""
    try:
        if not ref.startswith(BRANCH_PREFIX):
            return
        branch = ref[len(BRANCH_PREFIX) :]
        session = db.session()
        affected = list(
            session.scalars(
                select(MergeRequest).where(
                    MergeRequest.document_id == document.id,
                    MergeRequest.state == "open",
                    (MergeRequest.source_branch == branch) | (MergeRequest.target_branch == branch),
                )
            )
        )
    except Exception:  # noqa: BLE001 - a receiver must never fail the save or the push
        log.exception("merge requests: could not look up requests for %s", ref)
        return
    for mr in affected:
        try:
            refresh(mr, actor)
        except Exception:  # noqa: BLE001
            log.exception("merge requests: refreshing !%s of %s failed", mr.number, document.slug)
            db.session().rollback()


# --- merging ------------------------------------------------------------------------------


def merge(
    actor: User,
    mr: MergeRequest,
    *,
    style: str | None = None,
    delete_source: bool = False,
    resolutions: Mapping[str, str] | None = None,
    expected_head: str | None = None,
    source: str = "web",
) -> str:
    """Merge the reviewed head into the target; returns the target's new head.

    ``expected_head`` (what the merging person looked at) must still be the request's
    head; ``resolutions`` (path → text) settle the conflicts left after the prose-aware
    merge and need the merge-commit style. Raises :class:`NotMergeable`.
    """
    document = mr.document
    require(actor, Action.MERGE, document)
    style = style or get_settings(document).default_style
    if style not in MERGE_STYLES:
        raise MergeRequestError("The merge style is merge, squash or ff.")
    if mr.state != "open":
        raise NotMergeable(mr.state)
    git = repo(document)
    result = refresh(mr, actor)  # a head that moved since the last look is looked at now
    if expected_head and expected_head != mr.head_oid:
        raise NotMergeable(
            "checking", "New commits arrived since you looked; review them and merge again."
        )
    resolutions = dict(resolutions or {})
    reason = result.reason
    if reason == "conflicts":
        missing = [p for p in result.conflicts if p not in resolutions]
        if missing:
            raise NotMergeable("conflicts", result.message)
        if style != "merge":
            raise NotMergeable(
                "conflicts", "Resolved conflicts are committed as a merge commit; choose merge."
            )
        reason = _rule_blocker(
            result.rule,
            result.approvals,
            result.required_approvals,
            result.changes_requested,
            result.unresolved,
        ) or ("behind" if _blocks_behind(result.rule, git, mr) else "mergeable")
    if reason != "mergeable":
        raise NotMergeable(reason, result.message)
    target_head = _branch_head(git, mr.target_branch)
    if target_head is None:
        raise NotMergeable("missing_branch")
    message = _merge_message(mr, style)
    try:
        new = git.merge(
            mr.target_branch,
            mr.head_oid,
            style=style,
            expected_target=target_head,
            author=documents.author_of(actor),
            message=message,
            resolutions=resolutions or None,
            co_authors=_co_authors(git, mr, actor) if style == "squash" else (),
        )
    except gitstore.MergeConflict:
        raise NotMergeable("conflicts") from None
    except gitstore.RefConflict:
        raise NotMergeable(
            "checking", "The target branch moved while merging; nothing was merged. Try again."
        ) from None
    except gitstore.NotFastForward:
        raise NotMergeable(
            "behind", "A fast-forward is impossible: the target has commits the source lacks."
        ) from None
    except gitstore.NothingToCommit:
        raise NotMergeable("up_to_date") from None
    mr.state = "merged"
    mr.mergeability = "mergeable"
    mr.conflicts = []
    mr.merge_style = style
    mr.merge_commit = new
    mr.merged_from = target_head
    mr.merged_by_id = actor.id
    mr.merged_at = mr.updated_at = utcnow()
    record_event(mr, "merged", actor, style=style, commit=new, target=mr.target_branch)
    db.session().commit()
    record_ref_updates(
        document, actor, [(BRANCH_PREFIX + mr.target_branch, target_head, new)], source=source
    )
    if delete_source:
        _delete_source(actor, mr, git, source)
    _notify_merged(actor, mr)
    _track("mr_merged", document, actor)
    _reattach(mr)
    return new


def _reattach(mr: MergeRequest) -> None:
    """Keep ``mr`` usable by the caller even if a hook closed the session meanwhile."""
    session = db.session()
    if mr not in session:
        session.add(mr)


def _blocks_behind(rule: Protection | None, git: gitstore.Document, mr: MergeRequest) -> bool:
    if rule is None or not rule.block_behind:
        return False
    target_head = _branch_head(git, mr.target_branch)
    return target_head is not None and _behind(git, target_head, mr.head_oid)


def _merge_message(mr: MergeRequest, style: str) -> str:
    head = f"{mr.title} (!{mr.number})"
    if style == "ff":
        return head
    body = f"Merge branch '{mr.source_branch}' into '{mr.target_branch}'"
    if mr.description:
        body += "\n\n" + mr.description
    return f"{head}\n\n{body}"


def _co_authors(git: gitstore.Document, mr: MergeRequest, actor: User) -> tuple:
    """Everyone who authored a squashed commit keeps the credit (Co-authored-by)."""
    base = mr.base_oid or git.merge_base(git.head(mr.target_branch), mr.head_oid)
    people: dict[str, gitstore.Author] = {}
    for commit in git.commits_between(base, mr.head_oid):
        for person in (commit.author, *commit.co_authors):
            if person.email != actor.email:
                people.setdefault(person.email.lower(), person)
    return tuple(people.values())


def _delete_source(actor: User, mr: MergeRequest, git: gitstore.Document, source: str) -> None:
    """Delete the merged source branch unless it is protected or moved since."""
    branch = mr.source_branch
    if branch == mr.document.default_branch or protection_for(mr.document, branch) is not None:
        record_event(mr, "source_kept", actor, reason="protected")
        db.session().commit()
        return
    if not grant_for(actor, mr.document).allows(Action.CREATE_BRANCH):
        return
    try:
        git.delete_branch(branch, expected=mr.head_oid)
    except gitstore.GitStoreError:
        record_event(mr, "source_kept", actor, reason="moved")
        db.session().commit()
        return
    record_event(mr, "source_deleted", actor, branch=branch)
    db.session().commit()
    record_ref_updates(
        mr.document, actor, [(BRANCH_PREFIX + branch, mr.head_oid, ZERO)], source=source
    )


def revert(actor: User, mr: MergeRequest) -> str:
    """Undo a merged request with one new commit on the target branch."""
    require(actor, Action.MERGE, mr.document)
    if mr.state != "merged" or not mr.merge_commit or not mr.merged_from:
        raise MergeRequestError("Only merged requests can be reverted.")
    git = repo(mr.document)
    parent = _branch_head(git, mr.target_branch)
    if parent is None:
        raise MergeRequestError(f"The branch {mr.target_branch!r} no longer exists.")
    try:
        new = git.revert_range(
            mr.target_branch,
            mr.merged_from,
            mr.merge_commit,
            parent=parent,
            author=documents.author_of(actor),
            message=f'Revert "{mr.title}" (!{mr.number})\n\nThis reverts the merge of '
            f"{mr.source_branch} ({mr.merge_commit[:12]}).",
        )
    except gitstore.MergeConflict:
        raise MergeRequestError(
            "Later changes touch the same words; the merge cannot be reverted automatically."
        ) from None
    except gitstore.RefConflict:
        raise MergeRequestError("The branch moved meanwhile; try again.") from None
    record_event(mr, "reverted", actor, commit=new)
    db.session().commit()
    record_ref_updates(
        mr.document, actor, [(BRANCH_PREFIX + mr.target_branch, parent, new)], source="web"
    )
    return new


def reverted_by(mr: MergeRequest) -> str | None:
    """The commit that reverted this request, if any."""
    event = db.session().scalar(
        select(MergeRequestEvent)
        .where(MergeRequestEvent.merge_request_id == mr.id, MergeRequestEvent.kind == "reverted")
        .order_by(MergeRequestEvent.id.desc())
    )
    return None if event is None else event.data.get("commit")


# --- side effects -------------------------------------------------------------------------


def _track(name: str, document: Document, actor: User) -> None:
    try:
        from app.analytics import track

        track(name, {"document": document.slug}, user=actor)
    except Exception:  # noqa: BLE001 - analytics never fails an action
        log.debug("analytics: %s not recorded", name, exc_info=True)


def _notify_merged(actor: User, mr: MergeRequest) -> None:
    """Tell the author and the reviewers, requested or not (never the person who merged)."""
    try:
        from app.notifications.services import notify
    except ImportError:
        return
    session = db.session()
    requested = session.scalars(
        select(ReviewRequest.reviewer_id).where(ReviewRequest.merge_request_id == mr.id)
    )
    reviewed = session.scalars(select(Review.reviewer_id).where(Review.merge_request_id == mr.id))
    ids = {mr.author_id, *requested, *reviewed} - {actor.id}
    recipients = [u for u in (session.get(User, i) for i in sorted(ids)) if u is not None]
    if not recipients:
        return
    try:
        notify(
            recipients,
            "merged",
            actor=actor,
            subject=f"{actor.name} merged !{mr.number}: {mr.title}",
            body=f"{mr.source_branch} was merged into {mr.target_branch} ({mr.merge_style}).",
            url=f"/d/{mr.document.slug}/merge-requests/{mr.number}",
            document=mr.document,
        )
    except Exception:  # noqa: BLE001 - a mail problem must not undo the merge
        log.exception("notifying about the merge of !%s failed", mr.number)
