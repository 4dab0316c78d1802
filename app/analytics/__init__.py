"""First-party product analytics: visits, events, experiments and the admin dashboard."""

from __future__ import annotations

from typing import Any

from flask import Flask


def track(name: str, properties: dict[str, Any] | None = None, *, user: Any = None) -> None:
    """Record a server-side event (``document_created``, ``mr_merged`` ...).

    Never raises and never blocks the request: events are queued and written in batches.
    """


def init_app(app: Flask) -> None:
    """Register tracking hooks, pages and API routes."""
