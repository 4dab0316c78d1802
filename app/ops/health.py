"""Readiness checks: database, Redis and the repositories volume, each with a short timeout."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from app.ops import metrics

#: Seconds each check may take; a probe must answer before the orchestrator gives up.
TIMEOUT_SECONDS = 2


def check_database(url: str) -> None:
    """Connect afresh (not through the pool) and read the migration version.

    A reachable database without Quire's schema is not ready either, which is
    also what makes a mistyped SQLite path fail instead of creating a new file.
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:" and not Path(path).exists():
            raise RuntimeError(f"SQLite database {path} does not exist")
        engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": TIMEOUT_SECONDS})
    else:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        engine = create_engine(
            url,
            poolclass=NullPool,
            connect_args={
                "connect_timeout": TIMEOUT_SECONDS,
                "options": f"-c statement_timeout={TIMEOUT_SECONDS * 1000}",
            },
        )
    try:
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            if not version:
                raise RuntimeError("database is not migrated (no alembic version)")
    finally:
        engine.dispose()


def check_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(
        url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS
    )
    try:
        client.ping()
    except Exception:
        metrics.REDIS_ERRORS.labels(source="ready").inc()
        raise
    finally:
        client.close()


def check_repositories(root: Path) -> None:
    """The volume is a directory (created on a fresh machine) and takes a write."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".ready-", dir=root)
    try:
        os.write(fd, b"ok")
        os.fsync(fd)
    finally:
        os.close(fd)
        os.unlink(name)


def _timed(check: Callable[[], None]) -> dict[str, object]:
    t0 = time.perf_counter()
    try:
        check()
    except Exception as exc:  # noqa: BLE001 - any failure is "not ready", with its reason
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return {
            "ok": False,
            "ms": round((time.perf_counter() - t0) * 1000, 1),
            "error": f"{type(exc).__name__}: {message}"[:300],
        }
    return {"ok": True, "ms": round((time.perf_counter() - t0) * 1000, 1)}


def readiness(app: Flask) -> tuple[dict[str, object], bool]:
    """``({"status": ..., "checks": {...}}, ready)``."""
    config = app.config
    checks: dict[str, dict[str, object]] = {
        "database": _timed(lambda: check_database(str(config["DATABASE_URL"]))),
    }
    redis_url = config.get("REDIS_URL")
    if redis_url:
        checks["redis"] = _timed(lambda: check_redis(str(redis_url)))
    else:
        checks["redis"] = {"ok": True, "skipped": True, "ms": 0}
    checks["repositories"] = _timed(lambda: check_repositories(Path(config["REPOS_ROOT"])))
    ready = all(c["ok"] for c in checks.values())
    return {"status": "ready" if ready else "unready", "checks": checks}, ready
