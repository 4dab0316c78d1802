"""Alembic, driven from code so that no alembic.ini is needed."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from flask import current_app

from app.config import PROJECT_ROOT


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "app" / "migrations"))
    cfg.attributes["database_url"] = url or current_app.config["DATABASE_URL"]
    return cfg


def upgrade(url: str | None = None, revision: str = "heads") -> None:
    """Upgrade to every head: features developed side by side may branch the history
    (0002 and 0003 both follow 0001) until a merge revision joins them."""
    command.upgrade(alembic_config(url), revision)
