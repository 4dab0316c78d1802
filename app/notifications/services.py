"""Notifications: who hears about what, in the app and by email.

Callers (merge requests, reviews, annotations) call :func:`notify` inside the
transaction that records what happened, before they commit: the in-app rows
commit with it and the email leaves only after that commit (see
:mod:`app.notifications.mail`). Called after the caller's commit (when nothing
has been written since), :func:`notify` commits its own rows
(:mod:`app.notifications.transactions`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from flask import current_app, has_request_context, request
from sqlalchemy import func, select, update

from app import db
from app.auth.permissions import Action, can
from app.db import utcnow
from app.notifications import mail
from app.notifications.models import Notification, NotificationSetting
from app.notifications.transactions import has_pending_writes

if TYPE_CHECKING:
    from app.accounts.models import User
    from app.documents.models import Document

log = logging.getLogger(__name__)

KINDS = ("review_requested", "approved", "changes_requested", "merged", "mentioned")

#: What the settings page says about each kind.
KIND_LABELS = {
    "review_requested": "Someone requests your review",
    "approved": "Your merge request is approved",
    "changes_requested": "Changes are requested on your merge request",
    "merged": "A merge request you take part in is merged",
    "mentioned": "Someone @mentions you",
}

SUBJECT_MAX = 200
URL_MAX = 500


def notify(
    recipients: Iterable[User],
    kind: str,
    *,
    actor: User | None,
    subject: str,
    body: str,
    url: str,
    document: Document | None = None,
) -> None:
    """Create an in-app notification for each recipient and email those who want this kind.

    Never the actor, never twice, and, when ``document`` is given, only users who
    can still read it. Never raises into the caller: a notification is worth less
    than the merge or review that caused it, so failures are logged.
    """
    try:
        _notify(
            recipients, kind, actor=actor, subject=subject, body=body, url=url, document=document
        )
    except Exception:  # noqa: BLE001 - see the docstring
        log.exception("notify(%s) failed", kind)


def _notify(
    recipients: Iterable[User],
    kind: str,
    *,
    actor: User | None,
    subject: str,
    body: str,
    url: str,
    document: Document | None,
) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    session = db.session()
    joins_caller = has_pending_writes(session)
    people = _audience(recipients, actor, document)
    if not people:
        return
    subject = " ".join(subject.split())[:SUBJECT_MAX]
    wanted = email_wanted([p.id for p in people], kind)
    link = absolute_url(url)
    messages = []
    for person in people:
        session.add(
            Notification(
                user_id=person.id,
                kind=kind,
                actor_id=actor.id if actor is not None else None,
                document_id=document.id if document is not None else None,
                subject=subject,
                body=body,
                url=url[:URL_MAX],
            )
        )
        if wanted[person.id] and person.email:
            messages.append(mail.Message(person.email, subject, email_body(body, link)))
    mail.queue(session, messages)
    if not joins_caller:
        try:
            session.commit()
        except Exception:
            session.rollback()  # leave the caller a usable session (nothing of theirs was pending)
            raise


def _audience(
    recipients: Iterable[User], actor: User | None, document: Document | None
) -> list[User]:
    seen: set[int] = set()
    people: list[User] = []
    for person in recipients:
        if person is None or person.id in seen:
            continue
        seen.add(person.id)
        if actor is not None and person.id == actor.id:
            continue
        if not person.is_active:
            continue
        if document is not None and not can(person, Action.READ, document):
            continue
        people.append(person)
    return people


def email_wanted(user_ids: list[int], kind: str) -> dict[int, bool]:
    """Each user's email choice for ``kind`` (on unless they turned it off)."""
    off = set(
        db.session().scalars(
            select(NotificationSetting.user_id).where(
                NotificationSetting.user_id.in_(user_ids),
                NotificationSetting.kind == kind,
                NotificationSetting.email.is_(False),
            )
        )
    )
    return {uid: uid not in off for uid in user_ids}


def absolute_url(url: str) -> str:
    """Email needs a full link: ``BASE_URL`` first, else the host of the current request."""
    base = current_app.config.get("BASE_URL") or (request.host_url if has_request_context() else "")
    return urljoin(base.rstrip("/") + "/", url) if base and url.startswith("/") else url


def email_body(body: str, link: str) -> str:
    settings = absolute_url("/settings/notifications")
    return f"{body.rstrip()}\n\n{link}\n\n--\nChoose which emails Quire sends you: {settings}\n"


def unread_count(user: User) -> int:
    """Unread notifications of ``user`` (one indexed COUNT)."""
    return int(
        db.session().scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == user.id, Notification.read_at.is_(None))
        )
        or 0
    )


def mark_read(user: User, ids: Iterable[int] | None = None) -> None:
    """Mark ``ids`` (or every notification) of ``user`` read; other users' ids are ignored."""
    statement = (
        update(Notification)
        .where(Notification.user_id == user.id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
    )
    if ids is not None:
        wanted = [int(i) for i in ids]
        if not wanted:
            return
        statement = statement.where(Notification.id.in_(wanted))
    session = db.session()
    session.execute(statement)
    session.commit()


def list_for(user: User, *, before: int | None = None, limit: int = 50) -> list[Notification]:
    """Newest first; ``before`` is the id of the last one already shown."""
    query = select(Notification).where(Notification.user_id == user.id)
    if before is not None:
        query = query.where(Notification.id < before)
    return list(db.session().scalars(query.order_by(Notification.id.desc()).limit(limit)))


def get_for(user: User, notification_id: int) -> Notification | None:
    return db.session().scalar(
        select(Notification).where(
            Notification.id == notification_id, Notification.user_id == user.id
        )
    )


def email_settings(user: User) -> dict[str, bool]:
    """Every kind with the user's email choice."""
    stored = dict(
        db.session()
        .execute(
            select(NotificationSetting.kind, NotificationSetting.email).where(
                NotificationSetting.user_id == user.id
            )
        )
        .all()
    )
    return {kind: bool(stored.get(kind, True)) for kind in KINDS}


def save_email_settings(user: User, choices: dict[str, bool]) -> None:
    """Store the user's choice for every kind (kinds not given keep their value)."""
    session = db.session()
    stored = {
        row.kind: row
        for row in session.scalars(
            select(NotificationSetting).where(NotificationSetting.user_id == user.id)
        )
    }
    for kind, email in choices.items():
        if kind not in KINDS:
            raise ValueError(f"unknown notification kind {kind!r}")
        row = stored.get(kind)
        if row is None:
            session.add(NotificationSetting(user_id=user.id, kind=kind, email=bool(email)))
        else:
            row.email = bool(email)
    session.commit()
