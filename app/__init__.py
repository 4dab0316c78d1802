"""Quire: a document store in which every document is a bare Git repository.

``create_app`` is the application factory that ``flask --app app`` and
gunicorn (``app:create_app()``) both use.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask

from app.config import PROJECT_ROOT, Settings


def create_app(config: dict[str, Any] | None = None) -> Flask:
    settings = Settings.from_env()
    settings.validate()  # production refuses an unsafe configuration, saying why
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.update(settings.to_flask())
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(days=30)
    app.config["WTF_CSRF_TIME_LIMIT"] = None
    if config:
        app.config.update(config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = settings.resolve_secret_key()
    from app import ops

    ops.configure_logging(app)  # JSON lines on stdout (text on a terminal)

    from app import db, errors, extensions, storage
    from app.auth.sessions import SessionInterface

    app.session_interface = SessionInterface()
    from app import security

    security.init_app(app)  # trusted proxy hops, allowed hosts, HSTS
    from app.auth import current

    db.init_app(app)
    storage.init_app(app)
    extensions.init_app(app)
    current.init_app(app)
    errors.init_app(app)
    ops.init_app(app)  # request ids, metrics, slow queries, Sentry

    from app import cli, templating
    from app.accounts.views import bp as accounts_bp
    from app.api.views import bp as api_bp
    from app.documents.views import bp as documents_bp
    from app.githttp.views import bp as githttp_bp
    from app.ops.views import bp as ops_bp

    templating.init_app(app)
    app.register_blueprint(ops_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(api_bp)
    extensions.csrf.exempt(api_bp)
    app.register_blueprint(documents_bp)
    app.register_blueprint(githttp_bp)
    extensions.csrf.exempt(githttp_bp)  # token auth only; cookies are ignored there
    from app import live

    live.init_app(app)
    from app import search

    search.init_app(app)  # full-text index, /search, /api/v1/search
    from app import analytics, mergerequests, notifications, releases

    mergerequests.init_app(app)  # merge requests, reviews, the prose-aware merge
    releases.init_app(app)  # releases, branch graph, annotations
    notifications.init_app(app)  # in-app list and email
    analytics.init_app(app)  # visits, events, experiments, /admin/analytics
    cli.init_app(app)
    return app
