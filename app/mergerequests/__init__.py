"""Merge requests: propose a branch into another, review its word-level diff, merge.

``views`` and ``api`` hold the requests themselves (pages, JSON, the merge);
``review_views`` and ``reviews`` hold the conversation (threads, verdicts, review
requests). Both halves share :mod:`app.mergerequests.models`.
"""

from __future__ import annotations

from flask import Flask

from app.mergerequests import models as _models  # noqa: F401  (register the tables)


def init_app(app: Flask) -> None:
    """Register pages, API routes and signal receivers."""
    from app.extensions import csrf

    # review_api adds the conversation's routes to api.bp before it is registered.
    from app.mergerequests import api, review_api, review_views, views  # noqa: F401

    app.register_blueprint(views.bp)
    app.register_blueprint(review_views.bp)
    app.register_blueprint(api.bp)
    csrf.exempt(api.bp)  # bearer tokens only, like /api/v1
    views.init_app(app)
    review_views.init_app(app)
