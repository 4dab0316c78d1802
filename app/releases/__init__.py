"""Releases (annotated tags with Markdown notes), the branch graph and version annotations."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register pages and API routes."""
