"""Merge requests in the JSON API under /api/v1 (bearer tokens only)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("mergerequests_api", __name__, url_prefix="/api/v1")
