"""Pages of the reviews blueprint."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("reviews", __name__)


def init_app(app: Flask) -> None:
    """Connect signal receivers (nothing yet)."""
