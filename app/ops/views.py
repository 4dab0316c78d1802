"""Operational endpoints."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("ops", __name__)


@bp.get("/up")
def up():
    """Liveness: answers as soon as the process can serve, checks no dependency."""
    return {"status": "up"}
