"""Notifications: in-app list with an unread count, and email through SMTP.

Other capabilities call :func:`app.notifications.services.notify`; this package
owns the rows, the settings, the pages and the nav badge.
"""

from __future__ import annotations

import logging

from flask import Flask, g
from sqlalchemy.exc import SQLAlchemyError

from app.notifications import models as _models  # noqa: F401  (register the tables)

log = logging.getLogger(__name__)


def unread_for_nav() -> int | None:
    """The signed-in user's unread count, once per request; None when nobody is signed in.

    Templates call it (the nav item does), so pages and partials that never show
    the nav never run the COUNT.
    """
    actor = g.get("actor")
    if actor is None or g.get("via_token"):
        return None
    if "notifications_unread" not in g:
        from app.notifications.services import unread_count

        try:
            g.notifications_unread = unread_count(actor)
        except SQLAlchemyError:
            # An error page after a failed transaction must still render: no badge then.
            log.warning("unread notifications not counted", exc_info=True)
            g.notifications_unread = None
    return g.notifications_unread


def _template_globals() -> dict[str, object]:
    return {"notifications_unread": unread_for_nav}


def init_app(app: Flask) -> None:
    """Register the pages and the unread count for the nav."""
    from app.db import get_db
    from app.notifications.transactions import track_writes
    from app.notifications.views import bp

    app.register_blueprint(bp)
    with app.app_context():
        track_writes(get_db().sessions.session_factory)
    app.context_processor(_template_globals)
