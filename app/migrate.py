"""Alembic, driven from code so that no alembic.ini is needed."""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

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


#: pg_advisory_lock key for "a migration is running" (any constant shared by every release).
MIGRATION_LOCK_KEY = 0x71756972  # "quir"


@contextlib.contextmanager
def migration_lock(url: str, on_wait: Callable[[], None] | None = None) -> Iterator[float]:
    """Hold the database-wide migration lock; yields the seconds spent waiting for it.

    PostgreSQL: a session-level ``pg_advisory_lock`` on a connection of its own, released
    when the block ends or the process dies. SQLite: an exclusive ``flock`` on a file
    beside the database. Two containers starting at once thus migrate one after the other,
    and the second finds nothing left to do. ``on_wait`` is called once when the lock is
    held elsewhere, before blocking, so that an operator sees why a start is stalled.
    """
    started = time.monotonic()
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if not path or path == ":memory:":
            yield 0.0
            return
        lock_path = Path(path + ".migrate.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a+b") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait()
                fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield time.monotonic() - started
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return
    from sqlalchemy import text

    from app.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            key = {"key": MIGRATION_LOCK_KEY}
            if not conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), key):
                if on_wait is not None:
                    on_wait()
                conn.execute(text("SELECT pg_advisory_lock(:key)"), key)
            try:
                yield time.monotonic() - started
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
    finally:
        engine.dispose()


def upgrade_locked(url: str | None = None, on_wait: Callable[[], None] | None = None) -> float:
    """:func:`upgrade` under :func:`migration_lock`; returns the seconds spent waiting."""
    url = url or current_app.config["DATABASE_URL"]
    with migration_lock(url, on_wait) as waited:
        upgrade(url)
    return waited
