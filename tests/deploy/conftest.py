"""Fixtures for the deployment tests: fresh, empty PostgreSQL databases on demand."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture
def fresh_pg_database() -> Iterator[Callable[[], str]]:
    """A factory of new, empty (unmigrated) PostgreSQL databases, dropped afterwards."""
    admin_url = TEST_DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    base = TEST_DATABASE_URL.rpartition("/")[0]
    try:
        engine = create_engine(
            admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
        )
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "unavailable"
        message = f"PostgreSQL at {TEST_DATABASE_URL} unreachable ({type(exc).__name__}: {exc})"
        if IN_CI:
            pytest.fail(f"{message}; CI=true requires it", pytrace=False)
        pytest.skip(message)
    created: list[str] = []

    def make() -> str:
        name = f"quire_deploy_{uuid.uuid4().hex[:12]}"
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return f"{base}/{name}"

    yield make
    with engine.connect() as conn:
        for name in created:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture
def restore_url(backend: str, tmp_path: Path, fresh_pg_database: Callable[[], str]) -> str:
    """Where a test restores to: an empty database of the same backend as the app's."""
    if backend == "postgresql":
        return fresh_pg_database()
    return f"sqlite:///{tmp_path / 'restored' / 'quire.db'}"
