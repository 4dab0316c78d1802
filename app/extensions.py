"""Flask extensions shared by several capabilities."""

from __future__ import annotations

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect


def _rate_limit_key() -> str:
    """The client address, namespaced per application (apps can share one Redis)."""
    return current_app.config.get("RATELIMIT_NAMESPACE", "") + get_remote_address()


csrf = CSRFProtect()
limiter = Limiter(key_func=_rate_limit_key, default_limits=[], strategy="fixed-window")


def init_app(app: Flask) -> None:
    csrf.init_app(app)
    # Counters live in Redis when several workers share them, in memory otherwise.
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    limiter.init_app(app)
