"""Annotating versions: threaded Markdown comments on any commit of a document.

Reading them needs read access; writing needs the COMMENT right (reviewers and up).
Only the author edits a comment; the author or a maintainer deletes it. People
@mentioned who can read the document are notified (when notifications exist).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select

from app import db
from app.accounts.models import User
from app.auth.permissions import Action, PermissionDenied, Role, require
from app.db import utcnow
from app.documents.models import Document
from app.releases.models import MAX_BODY, Annotation

#: Fallback mention syntax, used only when the review package's parser is absent.
_MENTION = re.compile(r"(?<![\w.@/`-])@([A-Za-z0-9](?:[A-Za-z0-9_-]{0,38}[A-Za-z0-9])?)\b")


class AnnotationError(ValueError):
    """A user-caused problem (empty or too long body, unknown thread)."""


@dataclass
class Thread:
    """A first comment and its replies, oldest first."""

    root: Annotation
    replies: list[Annotation] = field(default_factory=list)

    @property
    def size(self) -> int:
        return 1 + len(self.replies)


def _clean(body: str) -> str:
    body = (body or "").replace("\r\n", "\n").strip()
    if not body:
        raise AnnotationError("Write something first.")
    if len(body) > MAX_BODY:
        raise AnnotationError(f"Comments are limited to {MAX_BODY} characters.")
    return body


def threads_for(document: Document, commit_oid: str) -> list[Thread]:
    """The threads on one version, oldest first."""
    rows = db.session().scalars(
        select(Annotation)
        .where(Annotation.document_id == document.id, Annotation.commit_oid == commit_oid)
        .order_by(Annotation.created_at, Annotation.id)
    )
    threads: dict[int, Thread] = {}
    orphans = []
    for row in rows:
        if row.thread_id is None:
            threads[row.id] = Thread(row)
        else:
            orphans.append(row)
    for reply in orphans:
        if reply.thread_id in threads:
            threads[reply.thread_id].replies.append(reply)
    return list(threads.values())


def counts_for(document: Document, commit_oids: Iterable[str]) -> dict[str, int]:
    """How many comments each of ``commit_oids`` has (commits without any are left out)."""
    oids = list(dict.fromkeys(commit_oids))
    if not oids:
        return {}
    rows = db.session().execute(
        select(Annotation.commit_oid, func.count(Annotation.id))
        .where(Annotation.document_id == document.id, Annotation.commit_oid.in_(oids))
        .group_by(Annotation.commit_oid)
    )
    return {oid: count for oid, count in rows}


def get_annotation(document: Document, annotation_id: int) -> Annotation | None:
    """An annotation of this document (None for one on another document: no leaks)."""
    row = db.session().get(Annotation, annotation_id)
    return row if row is not None and row.document_id == document.id else None


def add_annotation(
    actor: User,
    document: Document,
    commit_oid: str,
    body: str,
    *,
    reply_to: int | None = None,
    url: str = "",
) -> Annotation:
    """Comment on ``commit_oid`` (a full commit id the caller resolved), or reply in a thread."""
    require(actor, Action.COMMENT, document)
    body = _clean(body)
    thread_id = None
    if reply_to is not None:
        parent = get_annotation(document, reply_to)
        if parent is None or parent.commit_oid != commit_oid:
            raise AnnotationError("That conversation no longer exists.")
        thread_id = parent.thread_id or parent.id
    annotation = Annotation(
        document_id=document.id,
        commit_oid=commit_oid,
        thread_id=thread_id,
        author_id=actor.id,
        body=body,
    )
    session = db.session()
    session.add(annotation)
    session.commit()
    _notify_mentions(actor, document, annotation, url)
    return annotation


def can_edit(actor: User | None, annotation: Annotation) -> bool:
    return actor is not None and actor.id == annotation.author_id


def can_delete(actor: User | None, document: Document, annotation: Annotation) -> bool:
    """The author, a maintainer (or owner) of the document, or a site admin."""
    if actor is None:
        return False
    from app.auth.permissions import grant_for

    grant = grant_for(actor, document)
    if not grant.allows(Action.READ):
        return False
    return actor.id == annotation.author_id or grant.is_admin or grant.role >= Role.MAINTAINER


def edit_annotation(actor: User, document: Document, annotation: Annotation, body: str) -> None:
    """Only the author edits, and only while they may still comment."""
    require(actor, Action.COMMENT, document)
    if not can_edit(actor, annotation):
        raise PermissionDenied(Action.COMMENT, hide=False)
    annotation.body = _clean(body)
    annotation.edited_at = utcnow()
    db.session().commit()


def delete_annotation(actor: User, document: Document, annotation: Annotation) -> None:
    """Delete a comment; deleting a thread's first comment deletes its replies."""
    require(actor, Action.READ, document)
    if not can_delete(actor, document, annotation):
        raise PermissionDenied(Action.COMMENT, hide=False)
    session = db.session()
    # Statements, not ORM deletes: replies first, so the thread's rows go in a known order
    # whether or not the database cascades (SQLite does only with foreign keys on).
    session.execute(delete(Annotation).where(Annotation.thread_id == annotation.id))
    session.execute(delete(Annotation).where(Annotation.id == annotation.id))
    session.commit()
    session.expire_all()


# --- mentions -----------------------------------------------------------------------


def mentioned_users(body: str) -> list[User]:
    """Active users @mentioned in ``body``, through the review package's parser if present."""
    try:
        from app.mergerequests import mentions
    except ImportError:
        mentions = None  # type: ignore[assignment]
    parse = getattr(mentions, "parse_mentions", None)
    if parse is not None:
        return list(parse(body))
    if mentions is not None and hasattr(mentions, "usernames") and hasattr(mentions, "resolve"):
        return list(mentions.resolve(mentions.usernames(body)))
    names = list(dict.fromkeys(m.lower() for m in _MENTION.findall(body)))[:50]
    if not names:
        return []
    return list(
        db.session().scalars(
            select(User).where(func.lower(User.username).in_(names), User.is_active.is_(True))
        )
    )


def _notify_mentions(actor: User, document: Document, annotation: Annotation, url: str) -> None:
    try:
        from app.notifications.services import notify
    except ImportError:
        return
    users = [u for u in mentioned_users(annotation.body) if u.id != actor.id]
    if not users:
        return
    notify(
        users,
        "mentioned",
        actor=actor,
        subject=f"{actor.username} mentioned you on {document.title} ({annotation.commit_oid[:8]})",
        body=annotation.body,
        url=url,
        document=document,
    )
