"""Live collaborative editing: y-websocket rooms whose edits become Git commits.

See ``docs/ARCHITECTURE.md`` (Live editing). The file's text is the ``Y.Text``
named ``content``; any Yjs client speaking the y-websocket protocol can join.
"""

from __future__ import annotations

import signal
from typing import Any

from flask import Flask

from app.live.hub import Hub
from app.live.settings import LiveSettings


def init_app(app: Flask) -> Hub:
    """Create this app's hub and register the websocket route."""
    from app.live.views import bp, sock

    settings = LiveSettings.load(app.config)
    options = app.config.setdefault("SOCK_SERVER_OPTIONS", {})
    options.setdefault("max_message_size", settings.max_message_bytes)
    locks = bus = None
    redis_url = app.config.get("REDIS_URL") or ""
    if redis_url:
        # Several processes: fan-out through Redis pub/sub, Redis locks with fencing.
        import redis

        from app.live.bus import RedisBus
        from app.live.locks import RedisLocks

        client = redis.Redis.from_url(redis_url, socket_connect_timeout=5)
        locks = RedisLocks(
            client, prefix=settings.redis_prefix, ttl_seconds=settings.lock_ttl_seconds
        )
        bus = RedisBus(client, prefix=settings.redis_prefix)
    hub = Hub(
        settings=settings,
        engine=app.extensions["quire.db"].engine,
        store=app.extensions["quire.store"],
        locks=locks,
        bus=bus,
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


def stop_on_sigterm(app: Flask) -> None:
    """Commit and close live rooms as soon as SIGTERM arrives (gunicorn calls this).

    gunicorn's gevent worker only stops accepting on SIGTERM and then waits up to
    ``graceful_timeout`` for open requests, which websockets never finish: without
    this, rooms would be committed only after the sockets were cut.
    """
    import gevent

    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        if callable(previous):
            previous(signum, frame)
        gevent.spawn(stop, app)

    signal.signal(signal.SIGTERM, on_sigterm)


def stop(app: Flask) -> None:
    """Commit every room and close its sockets (SIGTERM, a deploy)."""
    hub = getattr(app, "extensions", {}).get("quire.live")
    if hub is not None:
        hub.shutdown()
