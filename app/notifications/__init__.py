"""Notifications: in-app list with an unread count, and email through SMTP."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register pages."""
