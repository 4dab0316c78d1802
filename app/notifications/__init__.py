"""Notifications: in-app list with an unread count, and email through SMTP.

Other capabilities call :func:`app.notifications.services.notify`; this package
owns the rows, the settings, the pages and the nav badge.
"""

from __future__ import annotations

from flask import Flask, g

from app.notifications import models as _models  # noqa: F401  (register the tables)


def _unread_badge() -> dict[str, object]:
    """``notifications_unread`` for templates: one COUNT per request, signed-in pages only."""
    actor = g.get("actor")
    if actor is None or g.get("via_token"):
        return {"notifications_unread": None}
    if "notifications_unread" not in g:
        from app.notifications.services import unread_count

        g.notifications_unread = unread_count(actor)
    return {"notifications_unread": g.notifications_unread}


def init_app(app: Flask) -> None:
    """Register the pages and the unread count for the nav."""
    from app.db import get_db
    from app.notifications.transactions import track_writes
    from app.notifications.views import bp

    app.register_blueprint(bp)
    with app.app_context():
        track_writes(get_db().sessions.session_factory)
    app.context_processor(_unread_badge)
