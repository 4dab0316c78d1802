"""Incident emails to status-page subscribers.

Mail goes through SMTP when ``SMTP_URL`` is set (``smtp://[user:pass@]host[:port]``,
``smtp+starttls://…`` or ``smtps://…``) from ``MAIL_FROM``; without it the
message is written to the log (the embedded default of docs/DESIGN).
"""

from __future__ import annotations

import logging
import os
import smtplib
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from flask import current_app, url_for
from sqlalchemy import select

from app import db

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 10


def _setting(name: str, default: str = "") -> str:
    return str(current_app.config.get(name) or os.environ.get(name) or default)


def send_mail(recipients: list[str], subject: str, body: str) -> None:
    """One message per recipient (nobody sees the other subscribers)."""
    sender = _setting("MAIL_FROM", "quire@localhost")
    url = _setting("SMTP_URL")
    if not url:
        for to in recipients:
            log.info("mail (no SMTP_URL)", extra={"to": to, "subject": subject})
        return
    parts = urlsplit(url)
    secure = parts.scheme == "smtps"
    port = parts.port or (465 if secure else 25)
    smtp_class = smtplib.SMTP_SSL if secure else smtplib.SMTP
    with smtp_class(parts.hostname or "localhost", port, timeout=TIMEOUT_SECONDS) as smtp:
        if parts.scheme == "smtp+starttls":
            smtp.starttls()
        if parts.username:
            smtp.login(unquote(parts.username), unquote(parts.password or ""))
        for to in recipients:
            message = EmailMessage()
            message["From"] = sender
            message["To"] = to
            message["Subject"] = subject
            message.set_content(body)
            smtp.send_message(message)


def incident_changed(incident, update) -> int:  # noqa: ANN001
    """Email every active subscriber about ``update``; returns how many were sent."""
    from app.accounts.models import User
    from app.ops.models import StatusSubscription

    recipients = list(
        db.session().scalars(
            select(User.email)
            .join(StatusSubscription, StatusSubscription.user_id == User.id)
            .where(User.is_active.is_(True))
        )
    )
    if not recipients:
        return 0
    link = url_for("ops.status_page", _external=True) + f"#incident-{incident.id}"
    subject = f"[{update.status}] {incident.title}"
    body = f"{incident.title}\nStatus: {update.status}\n\n{update.message}\n\n{link}\n"
    try:
        send_mail(recipients, subject, body)
    except (OSError, smtplib.SMTPException):
        # The incident is posted either way; the failure is logged (and reaches Sentry).
        log.exception("could not email %d status subscribers", len(recipients))
        return 0
    return len(recipients)
