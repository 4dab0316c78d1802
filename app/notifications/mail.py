"""Sending notification email after the database transaction commits, off the request path.

:func:`queue` collects messages on the SQLAlchemy session; they leave only when
that session's outermost transaction commits (a rolled-back merge request sends
nothing) and then in the background: a greenlet under gevent, a daemon thread
otherwise, so a slow or dead SMTP server never holds up the request. Failures
are logged, never raised.
"""

from __future__ import annotations

import logging
import smtplib
import threading
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from app.ops.logs import bound_request_id, current_request_id
from app.ops.notify import send_mail

log = logging.getLogger(__name__)

_OUTBOX = "quire.notifications.outbox"
_APP = "quire.notifications.app"
_HOOKED = "quire.notifications.hooked"


@dataclass(frozen=True)
class Message:
    to: str
    subject: str
    body: str


def queue(session: Session, messages: list[Message]) -> None:
    """Send ``messages`` once ``session`` commits; forget them if it rolls back."""
    if not messages:
        return
    session.info.setdefault(_OUTBOX, []).extend(messages)
    # The commit may happen where no application context is pushed any more.
    session.info[_APP] = current_app._get_current_object()  # type: ignore[attr-defined]
    if not session.info.get(_HOOKED):
        session.info[_HOOKED] = True
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_transaction_end", _after_transaction_end)


def pending(session: Session) -> int:
    """How many messages wait for this session's commit (zero once sent or dropped)."""
    return len(session.info.get(_OUTBOX, ()))


def _after_commit(session: Session) -> None:
    messages = session.info.pop(_OUTBOX, [])
    app = session.info.pop(_APP, None)
    if messages and app is not None:
        dispatch(app, messages)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    # After a commit the outbox is already empty; after a rollback or a close it is dropped.
    if transaction.parent is None and session.info.get(_OUTBOX):
        dropped = session.info.pop(_OUTBOX)
        log.info("notification email dropped: the transaction did not commit (%d)", len(dropped))


def dispatch(app: Flask, messages: list[Message]) -> None:
    """Hand ``messages`` to a background worker and return at once."""
    request_id = current_request_id()
    _start(lambda: _deliver(app, messages, request_id))


def _start(work: Callable[[], None]) -> None:
    try:
        from gevent import monkey

        under_gevent = monkey.is_module_patched("socket")
    except ImportError:  # pragma: no cover - gevent is a dependency
        under_gevent = False
    if under_gevent:
        import gevent

        gevent.spawn(work)
    else:
        threading.Thread(target=work, name="notification-mail", daemon=True).start()


def _deliver(app: Flask, messages: list[Message], request_id: str | None) -> None:
    with app.app_context(), bound_request_id(request_id):
        # One SMTP connection per distinct message; each recipient still gets their own copy.
        batches: dict[tuple[str, str], list[str]] = {}
        for message in messages:
            batches.setdefault((message.subject, message.body), []).append(message.to)
        for (subject, body), recipients in batches.items():
            try:
                send_mail(recipients, subject, body)
            except (OSError, smtplib.SMTPException):
                log.exception(
                    "notification email to %d recipient(s) failed",
                    len(recipients),
                    extra={"subject": subject},
                )
            except Exception:  # noqa: BLE001 - a background worker must never die silently
                log.exception("notification email failed unexpectedly", extra={"subject": subject})
