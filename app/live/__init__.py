"""Live collaborative editing: y-websocket rooms whose edits become Git commits.

See ``docs/ARCHITECTURE.md`` (Live editing). The file's text is the ``Y.Text``
named ``content``; any Yjs client speaking the y-websocket protocol can join.
"""

from __future__ import annotations

from flask import Flask

from app.live.hub import Hub
from app.live.settings import LiveSettings


def init_app(app: Flask) -> Hub:
    """Create this app's hub and register the websocket route."""
    from app.live.views import bp, sock

    settings = LiveSettings.load(app.config)
    options = app.config.setdefault("SOCK_SERVER_OPTIONS", {})
    options.setdefault("max_message_size", settings.max_message_bytes)
    hub = Hub(
        settings=settings,
        engine=app.extensions["quire.db"].engine,
        store=app.extensions["quire.store"],
    )
    app.extensions["quire.live"] = hub
    sock.init_app(app)
    app.register_blueprint(bp)
    return hub


def start(app: Flask) -> None:
    """Start the hub's background work; gunicorn calls this in each worker."""
    hub = getattr(app, "extensions", {}).get("quire.live")
    if hub is not None:
        hub.start()


def stop(app: Flask) -> None:
    """Commit every room and close its sockets (SIGTERM, a deploy)."""
    hub = getattr(app, "extensions", {}).get("quire.live")
    if hub is not None:
        hub.shutdown()
