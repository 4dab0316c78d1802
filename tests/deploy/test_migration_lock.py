"""`flask --app app db upgrade` holds a database-wide lock: two containers starting at once
migrate one after the other, and both succeed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from app.migrate import migration_lock

FLASK = str(Path(sys.executable).with_name("flask"))
ROOT = Path(__file__).resolve().parents[2]


def _env(url: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"QUIRE_ENV", "REDIS_URL"}}
    env.update(
        DATABASE_URL=url,
        REPOS_ROOT=str(tmp_path / "repos"),
        QUIRE_VAR_DIR=str(tmp_path / "var"),
        SECRET_KEY="x" * 40,
        LOG_FORMAT="text",
    )
    return env


def _upgrade(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [FLASK, "--app", "app", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _tables(url: str) -> set[str]:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db(
    request: pytest.FixtureRequest, tmp_path: Path, fresh_pg_database: Callable[[], str]
) -> Callable[[], str]:
    if request.param == "postgresql":
        return fresh_pg_database
    names = iter(range(100))
    return lambda: f"sqlite:///{tmp_path / f'quire{next(names)}.db'}"


def test_upgrade_waits_for_the_lock_held_elsewhere(
    empty_db: Callable[[], str], tmp_path: Path
) -> None:
    empty_url = empty_db()
    env = _env(empty_url, tmp_path)
    with migration_lock(empty_url):
        waiting = _upgrade(env)
        # Read until the command says it is blocked on the lock: however long importing
        # the app takes on a busy machine, it has then reached the lock and not passed it.
        seen = []
        for line in waiting.stdout:
            seen.append(line)
            if "waiting for another process's migration" in line:
                break
        else:
            pytest.fail("the upgrade never waited for the lock:\n" + "".join(seen))
        time.sleep(1.5)  # held long enough for the waiter to report its wait
        assert waiting.poll() is None
        assert "users" not in _tables(empty_url)
    rest, _ = waiting.communicate(timeout=120)
    out = "".join(seen) + rest
    assert waiting.returncode == 0, out
    assert "waited" in out and "database is up to date" in out
    assert {"users", "documents", "alembic_version"} <= _tables(empty_url)


def test_two_containers_migrating_an_empty_database_at_once(
    empty_db: Callable[[], str], tmp_path: Path
) -> None:
    url = empty_db()
    env = _env(url, tmp_path)
    first, second = _upgrade(env), _upgrade(env)
    for proc in (first, second):
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out
    assert {"users", "documents", "alembic_version"} <= _tables(url)
