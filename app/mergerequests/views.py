"""Pages of the mergerequests blueprint."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("mergerequests", __name__)


def init_app(app: Flask) -> None:
    """Connect signal receivers (nothing yet)."""
