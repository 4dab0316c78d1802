"""Recording visits and events."""

from __future__ import annotations

from typing import Any

from flask import Flask


def track(name: str, properties: dict[str, Any] | None = None, *, user: Any = None) -> None:
    """Queue one event (not yet recorded)."""


def init_app(app: Flask) -> None:
    """Register the tracking hooks."""
