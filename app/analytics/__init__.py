"""First-party product analytics: visits, events, experiments and the admin dashboard.

``tracking`` records (server-side events, the page-view script, privacy rules);
``dashboard`` reads (metrics, funnels, cohorts, experiments, forecasts, /admin/analytics).
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from app.analytics import models  # noqa: F401 - registers the tables with the metadata


def track(name: str, properties: dict[str, Any] | None = None, *, user: Any = None) -> None:
    """Record a server-side event (``document_created``, ``mr_merged`` ...).

    Never raises and never blocks the request: events are queued and written in batches.
    """
    from app.analytics import tracking

    tracking.track(name, properties, user=user)


def init_app(app: Flask) -> None:
    """Register tracking hooks, pages and API routes."""
    from app.analytics import dashboard, tracking, views
    from app.analytics.cli import analytics_cli
    from app.extensions import csrf

    tracking.init_app(app)
    app.register_blueprint(views.bp)
    csrf.exempt(views.beacon)  # sendBeacon cannot send a token: same-origin checked instead
    dashboard.init_app(app)
    app.cli.add_command(analytics_cli)
