"""The analytics dashboard and its JSON."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register /admin/analytics and /api/v1/admin/analytics."""
