"""Releases (annotated tags with Markdown notes), the branch graph and version annotations.

``services`` reads and writes releases (Git is their only record), ``branches`` the
branch list's ahead/behind, rename and guarded delete, ``annotate`` the comments
on versions (the only table: :mod:`app.releases.models`). ``views`` holds the pages,
``api`` the /api/v1 routes for tags and releases.
"""

from __future__ import annotations

from flask import Flask

from app.releases import models as _models  # noqa: F401  (register the tables)


def init_app(app: Flask) -> None:
    """Register pages and API routes."""
    from app.extensions import csrf
    from app.releases import api, views

    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    csrf.exempt(api.bp)  # bearer tokens only, like /api/v1
    views.init_templates(app)
