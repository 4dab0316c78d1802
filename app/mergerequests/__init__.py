"""Merge requests: propose a branch into another, review its word-level diff, merge."""

from __future__ import annotations

from flask import Flask

from app.mergerequests import models as _models  # noqa: F401  (register the tables)


def init_app(app: Flask) -> None:
    """Register pages, API routes and signal receivers."""
