"""The review conversation on a merge request: threads, comments, verdicts, reviewers.

Services take the acting user first, check the permission module themselves (the web
routes and any API entry share these rules), own their transaction, and never read the
request. Content stays in Git: a line thread remembers the head it was written on and
the text of its lines then (``anchor_text``), so that when the source branch moves the
thread can tell whether its lines still say the same thing.

The merge request half (``services``) asks four questions of this module when it
computes mergeability (:func:`approval_count`, :func:`has_changes_requested`,
:func:`unresolved_count`) and tells it when the head moved (:func:`on_new_head`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import selectinload

import gitstore
from app import db
from app.accounts.models import User
from app.auth.permissions import Action, Grant, PermissionDenied, can, grant_for, require
from app.db import utcnow
from app.mergerequests import mentions
from app.mergerequests.models import (
    MergeRequest,
    MergeRequestEvent,
    Review,
    ReviewComment,
    ReviewRequest,
    ReviewThread,
)

log = logging.getLogger(__name__)

SIDES = ("old", "new")
VERDICTS = ("approved", "changes_requested")
MAX_BODY = 65_536
#: A range comment covers at most this many lines (a whole-file comment is a general one).
MAX_RANGE = 500


class ReviewError(ValueError):
    """A user-caused problem with a review action; the message is shown as is."""


# --- the questions the merge request half asks ---------------------------------------


def _standing(mr: MergeRequest, reviews: Iterable[Review]) -> dict[int, Review]:
    """Each reviewer's latest verdict, if it still stands (``reviews`` in id order).

    A dismissed latest verdict leaves the reviewer with none: an earlier request for
    changes does not come back when the approval that replaced it is reset. The author's
    own verdicts never count.
    """
    latest: dict[int, Review] = {}
    for review in reviews:
        if review.reviewer_id != mr.author_id:
            latest[review.reviewer_id] = review
    return {who: r for who, r in latest.items() if not r.dismissed}


def _reviews_of(mr: MergeRequest) -> list[Review]:
    return list(
        db.session().scalars(
            select(Review).where(Review.merge_request_id == mr.id).order_by(Review.id)
        )
    )


def standing_verdicts(mr: MergeRequest) -> dict[int, str]:
    """Reviewer id → 'approved' or 'changes_requested', for verdicts that still stand."""
    return {who: r.verdict for who, r in _standing(mr, _reviews_of(mr)).items()}


def approval_count(mr: MergeRequest) -> int:
    """Reviewers whose latest verdict is a standing approval (never the author)."""
    return sum(1 for v in standing_verdicts(mr).values() if v == "approved")


def has_changes_requested(mr: MergeRequest) -> bool:
    """True while some reviewer's latest standing verdict asks for changes."""
    return "changes_requested" in standing_verdicts(mr).values()


def unresolved_count(mr: MergeRequest) -> int:
    """Unresolved threads, outdated ones included: an outdated question is still open."""
    return len(
        db.session()
        .scalars(
            select(ReviewThread.id).where(
                ReviewThread.merge_request_id == mr.id, ReviewThread.resolved.is_(False)
            )
        )
        .all()
    )


def threads_for_diff(mr: MergeRequest) -> dict[tuple[str, str, int], list[ReviewThread]]:
    """Current line threads keyed by where the diff shows them: (path, side, last line)."""
    out: dict[tuple[str, str, int], list[ReviewThread]] = defaultdict(list)
    threads = db.session().scalars(
        select(ReviewThread)
        .where(
            ReviewThread.merge_request_id == mr.id,
            ReviewThread.path.is_not(None),
            ReviewThread.outdated.is_(False),
        )
        .order_by(ReviewThread.id)
    )
    for thread in threads:
        assert thread.path is not None and thread.side and thread.line_end
        out[(thread.path, thread.side, thread.line_end)].append(thread)
    return dict(out)


def on_new_head(mr: MergeRequest, old: str, new: str) -> None:
    """The source moved from ``old`` to ``new``: re-check line anchors, maybe reset approvals.

    Called by the merge request half after it has stored ``mr.head_oid = new`` (and the
    new merge base). A thread whose lines no longer read as they did when it was written
    is marked outdated; one whose text moved intact to other lines follows it. The caller
    commits.
    """
    if old == new:
        return
    repo = _repo(mr)
    texts: dict[tuple[str, str], list[str] | None] = {}
    for thread in _line_threads(mr, outdated=False):
        assert thread.path is not None and thread.side is not None
        key = (thread.path, thread.side)
        if key not in texts:
            texts[key] = _file_lines(repo, thread.path, _side_ref(mr, thread.side))
        _reanchor(thread, texts[key])
    if _resets_approvals(mr):
        standing = db.session().scalars(
            select(Review).where(
                Review.merge_request_id == mr.id,
                Review.dismissed.is_(False),
                Review.verdict == "approved",
            )
        )
        dismissed = [r for r in standing if r.commit_oid != new]
        for review in dismissed:
            review.dismissed = True
        if dismissed:
            _event(mr, "approvals_reset", None, head=new, count=len(dismissed))
    db.session().flush()


def _reanchor(thread: ReviewThread, lines: list[str] | None) -> None:
    """Keep ``thread`` where its anchor text still is, follow it if it moved, else outdate."""
    assert thread.line_start is not None and thread.line_end is not None
    anchor = (thread.anchor_text or "").split("\n")
    if lines is None:
        thread.outdated = True
        return
    start = thread.line_start
    if lines[start - 1 : start - 1 + len(anchor)] == anchor:
        return
    found = [
        i + 1 for i in range(len(lines) - len(anchor) + 1) if lines[i : i + len(anchor)] == anchor
    ]
    if len(found) == 1:  # moved intact and unambiguously: follow it
        thread.line_start = found[0]
        thread.line_end = found[0] + len(anchor) - 1
        return
    thread.outdated = True


def _resets_approvals(mr: MergeRequest) -> bool:
    """Whether the target branch's protection rule dismisses approvals on new commits."""
    from app.documents.protection import protection_for

    rule = protection_for(mr.document, mr.target_branch)
    return bool(rule is not None and rule.reset_approvals)


# --- reading ---------------------------------------------------------------------------


def _repo(mr: MergeRequest) -> gitstore.Document:
    from app.documents.services import repo

    return repo(mr.document)


def _side_ref(mr: MergeRequest, side: str) -> str:
    """The commit a side of the diff shows: the head for 'new', the merge base for 'old'."""
    if side == "new":
        return mr.head_oid
    if mr.base_oid:
        return mr.base_oid
    target = f"refs/heads/{mr.target_branch}"
    try:
        return _repo(mr).merge_base(target, mr.head_oid) or target
    except gitstore.GitStoreError:
        return target


def _file_lines(repo: gitstore.Document, path: str, ref: str) -> list[str] | None:
    """The file's lines at ``ref``, or None when it is missing or binary there."""
    try:
        content = repo.read(path, ref)
    except (gitstore.GitStoreError, KeyError, ValueError):
        return None
    if content.is_binary:
        return None
    return content.text.splitlines()


def lines_of(mr: MergeRequest, path: str, side: str, start: int, end: int) -> list[str] | None:
    """Lines ``start..end`` (either order) of ``path`` as ``side`` of the diff shows them."""
    lines = _file_lines(_repo(mr), path, _side_ref(mr, side))
    if lines is None:
        return None
    lo, hi = sorted((start, end))
    return lines[max(lo, 1) - 1 : hi]


def _line_threads(mr: MergeRequest, *, outdated: bool | None = None) -> list[ReviewThread]:
    query = select(ReviewThread).where(
        ReviewThread.merge_request_id == mr.id, ReviewThread.path.is_not(None)
    )
    if outdated is not None:
        query = query.where(ReviewThread.outdated.is_(outdated))
    return list(db.session().scalars(query.order_by(ReviewThread.id)))


@dataclass(frozen=True)
class Conversation:
    """Everything the overview shows of the review, loaded in one place."""

    general: list[ReviewThread]
    current: list[ReviewThread]
    outdated: list[ReviewThread]
    reviews: list[Review]
    requested: list[ReviewRequest]
    approvals: int
    changes_requested: bool
    unresolved: int

    @property
    def by_id(self) -> dict[int, ReviewThread]:
        return {t.id: t for t in self.general + self.current + self.outdated}

    def latest_verdicts(self) -> list[Review]:
        """Each reviewer's latest verdict, dismissed ones included (shown struck out)."""
        latest: dict[int, Review] = {}
        for review in self.reviews:
            latest[review.reviewer_id] = review
        return list(latest.values())


def conversation(mr: MergeRequest) -> Conversation:
    threads = list(
        db.session().scalars(
            select(ReviewThread)
            .where(ReviewThread.merge_request_id == mr.id)
            .options(selectinload(ReviewThread.comments).selectinload(ReviewComment.author))
            .order_by(ReviewThread.id)
        )
    )
    reviews = _reviews_of(mr)
    standing = [r.verdict for r in _standing(mr, reviews).values()]
    return Conversation(
        general=[t for t in threads if t.path is None],
        current=[t for t in threads if t.path is not None and not t.outdated],
        outdated=[t for t in threads if t.path is not None and t.outdated],
        reviews=reviews,
        requested=requested_reviewers(mr),
        approvals=standing.count("approved"),
        changes_requested="changes_requested" in standing,
        unresolved=sum(1 for t in threads if not t.resolved),
    )


def requested_reviewers(mr: MergeRequest) -> list[ReviewRequest]:
    return list(
        db.session().scalars(
            select(ReviewRequest)
            .where(ReviewRequest.merge_request_id == mr.id)
            .order_by(ReviewRequest.id)
        )
    )


def reviewer_candidates(mr: MergeRequest) -> list[User]:
    """People who could be asked for a review: the owner and members who may approve.

    Offered as suggestions only; :func:`request_review` checks the real rule.
    """
    from app.documents.models import Membership

    rows = db.session().execute(
        select(User, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.document_id == mr.document_id)
        .order_by(User.username)
    )
    members = [user for user, role in rows if _role_allows(role, Action.APPROVE)]
    owner = db.session().get(User, mr.document.owner_id)
    people = ([owner] if owner is not None else []) + members
    return [u for u in people if u.is_active and u.id != mr.author_id]


def _role_allows(label: str, action: Action) -> bool:
    from app.auth.permissions import Role

    try:
        return Role.parse(label) >= action.least_role
    except ValueError:
        return False


def get_thread(mr: MergeRequest, thread_id: int) -> ReviewThread | None:
    thread = db.session().get(ReviewThread, thread_id)
    return thread if thread is not None and thread.merge_request_id == mr.id else None


def get_comment(mr: MergeRequest, comment_id: int) -> ReviewComment | None:
    comment = db.session().get(ReviewComment, comment_id)
    if comment is None or comment.thread.merge_request_id != mr.id:
        return None
    return comment


# --- writing -----------------------------------------------------------------------------


def _clean_body(body: str, *, required: bool = True) -> str:
    body = (body or "").replace("\r\n", "\n").strip()
    if required and not body:
        raise ReviewError("Write a comment first.")
    if len(body) > MAX_BODY:
        raise ReviewError(f"Comments are at most {MAX_BODY:,} characters.")
    return body


def _require_open(mr: MergeRequest) -> None:
    if mr.state != "open":
        raise ReviewError("This merge request is no longer open.")


def start_thread(
    actor: User,
    mr: MergeRequest,
    body: str,
    *,
    path: str | None = None,
    side: str | None = None,
    line_start: int | None = None,
    line_end: int | None = None,
) -> ReviewThread:
    """Open a thread: on lines ``line_start..line_end`` of ``side`` of ``path``, or general.

    The anchor is taken from the commit the diff shows for that side now, so that a later
    head can be compared with what the reviewer actually read.
    """
    require(actor, Action.COMMENT, mr.document)
    body = _clean_body(body)
    thread = ReviewThread(merge_request_id=mr.id, author_id=actor.id)
    if path:
        _require_open(mr)
        if side not in SIDES:
            raise ReviewError("Choose the old or the new side of the diff.")
        if line_start is None or line_start < 1:
            raise ReviewError("Choose a line of the diff.")
        line_end = line_start if line_end is None else line_end
        if line_end < line_start:
            line_start, line_end = line_end, line_start
            if line_start < 1:
                raise ReviewError("Choose a line of the diff.")
        if line_end - line_start + 1 > MAX_RANGE:
            raise ReviewError(f"A comment covers at most {MAX_RANGE} lines.")
        lines = _file_lines(_repo(mr), path, _side_ref(mr, side))
        if lines is None:
            raise ReviewError(f"{path} is not a text file on that side of the diff.")
        if line_end > len(lines):
            count = f"{len(lines)} line" + ("" if len(lines) == 1 else "s")
            raise ReviewError(f"{path} has {count} on that side of the diff.")
        thread.path = path
        thread.side = side
        thread.line_start = line_start
        thread.line_end = line_end
        thread.commit_oid = mr.head_oid
        thread.anchor_text = "\n".join(lines[line_start - 1 : line_end])
    thread.comments.append(ReviewComment(author_id=actor.id, body=body))
    db.session().add(thread)
    db.session().flush()
    where = {"path": path, "side": side, "line_start": line_start, "line_end": line_end}
    _event(mr, "commented", actor, thread=thread.id, **({k: v for k, v in where.items() if v}))
    _after_comment(actor, mr, body, thread)
    db.session().commit()
    _refresh(mr)
    return thread


def reply(actor: User, mr: MergeRequest, thread: ReviewThread, body: str) -> ReviewComment:
    require(actor, Action.COMMENT, mr.document)
    body = _clean_body(body)
    comment = ReviewComment(thread_id=thread.id, author_id=actor.id, body=body)
    db.session().add(comment)
    db.session().flush()
    _event(mr, "commented", actor, thread=thread.id, reply=comment.id)
    _after_comment(actor, mr, body, thread)
    db.session().commit()
    return comment


def edit_comment(actor: User, mr: MergeRequest, comment: ReviewComment, body: str) -> None:
    """Authors edit their own comments (while they may still comment on the document)."""
    require(actor, Action.COMMENT, mr.document)
    if comment.author_id != actor.id:
        raise PermissionDenied(Action.COMMENT, hide=False)
    body = _clean_body(body)
    if body == comment.body:
        return
    before = set(mentions.usernames(comment.body))
    comment.body = body
    comment.edited_at = utcnow()
    new_mentions = [u for u in mentions.usernames(body) if u not in before]
    if new_mentions:
        _notify_mentions(actor, mr, new_mentions, body, comment.thread)
    db.session().commit()


def _resolver(grant: Grant, actor_id: int, mr: MergeRequest, thread: ReviewThread) -> bool:
    """RESOLVE_THREAD, or the thread's author, or the request's author answering the review."""
    if grant.allows(Action.RESOLVE_THREAD):
        return True
    if thread.author_id == actor_id and grant.allows(Action.COMMENT):
        return True
    return mr.author_id == actor_id and grant.allows(Action.OPEN_MERGE_REQUEST)


def _may_resolve(actor: User, mr: MergeRequest, thread: ReviewThread) -> None:
    grant = require(actor, Action.READ, mr.document)
    if not _resolver(grant, actor.id, mr, thread):
        raise PermissionDenied(Action.RESOLVE_THREAD, hide=False)


def set_resolved(actor: User, mr: MergeRequest, thread: ReviewThread, resolved: bool) -> None:
    """Resolve or reopen a thread (RESOLVE_THREAD, the thread's author, or the MR's author)."""
    _may_resolve(actor, mr, thread)
    if thread.resolved == resolved:
        return
    thread.resolved = resolved
    thread.resolved_by_id = actor.id if resolved else None
    _event(mr, "resolved" if resolved else "unresolved", actor, thread=thread.id)
    db.session().commit()
    _refresh(mr)


def submit_review(actor: User, mr: MergeRequest, verdict: str, body: str = "") -> Review:
    """Approve or request changes on the current head, with an optional comment."""
    require(actor, Action.APPROVE, mr.document)
    if verdict not in VERDICTS:
        raise ReviewError("Choose approve or request changes.")
    _require_open(mr)
    if actor.id == mr.author_id:
        raise ReviewError("You cannot review your own merge request.")
    body = _clean_body(body, required=False)
    review = Review(
        merge_request_id=mr.id,
        reviewer_id=actor.id,
        verdict=verdict,
        commit_oid=mr.head_oid,
        body=body,
    )
    db.session().add(review)
    db.session().flush()
    _event(mr, "reviewed", actor, review=review.id, verdict=verdict, head=mr.head_oid)
    _event(mr, verdict, actor, review=review.id, head=mr.head_oid)
    if body:
        _notify_mentions(actor, mr, mentions.usernames(body), body, None)
    _notify(
        [mr.author],
        verdict,
        actor=actor,
        mr=mr,
        body=body,
        subject=(
            f"{actor.name} approved !{mr.number}: {mr.title}"
            if verdict == "approved"
            else f"{actor.name} requested changes on !{mr.number}: {mr.title}"
        ),
    )
    db.session().commit()
    _track("mr_reviewed", mr, actor)
    if verdict == "approved":
        _track("mr_approved", mr, actor)
    _refresh(mr)
    return review


def request_review(actor: User, mr: MergeRequest, reviewer: User) -> ReviewRequest:
    """Ask ``reviewer`` for a review (OPEN_MERGE_REQUEST or the request's author)."""
    require_reviewer_manager(actor, mr)
    if reviewer.id == mr.author_id:
        raise ReviewError("The author cannot review their own merge request.")
    if not reviewer.is_active or not can(reviewer, Action.APPROVE, mr.document):
        raise ReviewError(
            f"{reviewer.username} cannot review this document (reviewer role needed)."
        )
    existing = db.session().scalar(
        select(ReviewRequest).where(
            ReviewRequest.merge_request_id == mr.id, ReviewRequest.reviewer_id == reviewer.id
        )
    )
    if existing is not None:
        return existing
    request = ReviewRequest(
        merge_request_id=mr.id, reviewer_id=reviewer.id, requested_by_id=actor.id
    )
    db.session().add(request)
    db.session().flush()
    _event(mr, "review_requested", actor, reviewer=reviewer.id, username=reviewer.username)
    _notify(
        [reviewer],
        "review_requested",
        actor=actor,
        mr=mr,
        body=mr.description,
        subject=f"{actor.name} asked for your review on !{mr.number}: {mr.title}",
    )
    db.session().commit()
    return request


def remove_review_request(actor: User, mr: MergeRequest, reviewer_id: int) -> None:
    require_reviewer_manager(actor, mr)
    existing = db.session().scalar(
        select(ReviewRequest).where(
            ReviewRequest.merge_request_id == mr.id, ReviewRequest.reviewer_id == reviewer_id
        )
    )
    if existing is None:
        return
    username = existing.reviewer.username
    db.session().delete(existing)
    _event(mr, "review_request_removed", actor, reviewer=reviewer_id, username=username)
    db.session().commit()


def _reviewer_manager(grant: Grant, actor_id: int, mr: MergeRequest) -> bool:
    """OPEN_MERGE_REQUEST, or the request's author (who may still comment)."""
    if grant.allows(Action.OPEN_MERGE_REQUEST):
        return True
    return actor_id == mr.author_id and grant.allows(Action.COMMENT)


def require_reviewer_manager(actor: User, mr: MergeRequest) -> None:
    """Raise PermissionDenied unless ``actor`` may add or remove requested reviewers."""
    grant = require(actor, Action.READ, mr.document)
    if not _reviewer_manager(grant, actor.id, mr):
        raise PermissionDenied(Action.OPEN_MERGE_REQUEST, hide=False)


def can_manage_reviewers(actor: User | None, mr: MergeRequest, grant: Grant | None = None) -> bool:
    if actor is None:
        return False
    grant = grant or grant_for(actor, mr.document)
    return grant.allows(Action.READ) and _reviewer_manager(grant, actor.id, mr)


def can_resolve(
    actor: User | None, mr: MergeRequest, thread: ReviewThread, grant: Grant | None = None
) -> bool:
    if actor is None:
        return False
    grant = grant or grant_for(actor, mr.document)
    return grant.allows(Action.READ) and _resolver(grant, actor.id, mr, thread)


# --- side effects ------------------------------------------------------------------------


def _event(mr: MergeRequest, kind: str, actor: User | None, **data: object) -> None:
    """Record a timeline event through the merge request half when it offers one."""
    try:
        from app.mergerequests.services import record_event
    except ImportError:
        record_event = None
    if record_event is not None:
        record_event(mr, kind, actor, **data)
        return
    db.session().add(
        MergeRequestEvent(
            merge_request_id=mr.id, kind=kind, actor_id=actor.id if actor else None, data=data
        )
    )


def _refresh(mr: MergeRequest) -> None:
    """Recompute mergeability after a verdict or a resolution (the other half's job)."""
    try:
        from app.mergerequests.services import refresh
    except ImportError:
        return
    try:
        refresh(mr)
    except Exception:  # noqa: BLE001 - the review itself is stored; mergeability catches up
        log.exception("refreshing merge request %s failed", mr.id)


def _after_comment(actor: User, mr: MergeRequest, body: str, thread: ReviewThread) -> None:
    _notify_mentions(actor, mr, mentions.usernames(body), body, thread)


def _notify_mentions(
    actor: User, mr: MergeRequest, usernames: Iterable[str], body: str, thread: ReviewThread | None
) -> None:
    """Tell mentioned users who may read the document (never the writer, never strangers)."""
    users = mentioned_readers(actor, mr, usernames)
    if users:
        _notify(
            users,
            "mentioned",
            actor=actor,
            mr=mr,
            body=body,
            subject=f"{actor.name} mentioned you on !{mr.number}: {mr.title}",
            thread=thread,
        )


def mentioned_readers(actor: User, mr: MergeRequest, usernames: Iterable[str]) -> list[User]:
    """The mentioned users who exist, are active and may read the document, minus the writer.

    A mention of someone without access must not tell them the document exists.
    """
    return [
        u
        for u in mentions.resolve(usernames)
        if u.id != actor.id and grant_for(u, mr.document).allows(Action.READ)
    ]


def mr_url(mr: MergeRequest, thread: ReviewThread | None = None) -> str:
    base = f"/d/{mr.document.slug}/merge-requests/{mr.number}"
    return f"{base}#thread-{thread.id}" if thread is not None else base


def _notify(
    users: list[User],
    kind: str,
    *,
    actor: User,
    mr: MergeRequest,
    body: str,
    subject: str,
    thread: ReviewThread | None = None,
) -> None:
    users = [u for u in users if u is not None and u.id != actor.id]
    if not users:
        return
    try:
        from app.notifications.services import notify
    except ImportError:
        return
    try:
        notify(
            users,
            kind,
            actor=actor,
            subject=subject,
            body=body,
            url=mr_url(mr, thread),
            document=mr.document,
        )
    except Exception:  # noqa: BLE001 - a mail problem must not lose the review
        log.exception("notifying %s about merge request %s failed", kind, mr.id)


def _track(name: str, mr: MergeRequest, actor: User) -> None:
    try:
        from app.analytics import track
    except ImportError:
        return
    track(name, {"document": mr.document.slug}, user=actor)
