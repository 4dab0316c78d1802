"""Jinja filters and globals shared by every page."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask
from markupsafe import Markup

from app.rendering.markdown import render_markdown


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """A compact relative time ('3 min ago'); the exact time goes in a title attribute."""
    if value is None:
        return ""
    seconds = int(((now or datetime.now(UTC)) - value).total_seconds())
    if seconds < 45:
        return "just now"
    for size, unit in (
        (86400 * 365, "year"),
        (86400 * 30, "month"),
        (86400, "day"),
        (3600, "hour"),
        (60, "min"),
    ):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 and unit != 'min' else ''} ago"
    return "just now"


def isotime(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else ""


def init_app(app: Flask) -> None:
    from app import assets

    assets.init_app(app)  # asset_url('editor.js') and the bundles' cache headers
    app.jinja_env.filters["ago"] = ago
    app.jinja_env.filters["isotime"] = isotime
    app.jinja_env.filters["markdown"] = lambda text: Markup(render_markdown(text or ""))
    from app.rendering.diffview import words_html

    app.jinja_env.filters["words"] = words_html
    app.jinja_env.filters["short"] = lambda oid: (oid or "")[:8]
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
