"""Merge requests: propose a branch into another, review its word-level diff, merge."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register pages, API routes and signal receivers."""
