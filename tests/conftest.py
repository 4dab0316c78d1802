"""Shared fixtures: an application on each database backend, clients, accounts.

Database tests take the ``app`` fixture, which runs every test once on SQLite
and once on PostgreSQL + Redis (the production configuration). Where
PostgreSQL or Redis does not answer the PostgreSQL runs are skipped with the
reason; under ``CI=true`` that is a failure instead.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from app import create_app, db
from app.db import Base
from app.migrate import upgrade

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() == "true"
PASSWORD = "correct horse battery"


def _unavailable(what: str, exc: Exception) -> None:
    message = f"{what} unreachable ({type(exc).__name__}: {exc})"
    if IN_CI:
        pytest.fail(f"{message}; CI=true requires it", pytrace=False)
    pytest.skip(message)


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _pg_url(database: str) -> str:
    base, _, _ = TEST_DATABASE_URL.rpartition("/")
    return f"{base}/{database}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of this test worker's own, migrated to head."""
    admin_url = TEST_DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    # Unique per run and worker: concurrent runs on one server never share a database.
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID", uuid.uuid4().hex)[:8]
    name = f"quire_test_{_worker()}_{run_id}"
    try:
        engine = create_engine(
            admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
        )
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "unavailable"
        _unavailable("PostgreSQL at " + TEST_DATABASE_URL, exc)
    url = _pg_url(name)
    upgrade(url)
    yield url
    # Analytics events still queued in this process belong to this database: land them
    # before it goes, rather than fail (and log) at exit.
    from app.analytics import tracking

    tracking.flush()
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001
        _unavailable("Redis at " + TEST_REDIS_URL, exc)
    return TEST_REDIS_URL


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'quire.db'}"
    upgrade(url)
    return url


@pytest.fixture(autouse=True)
def _no_indexer_outlives_its_test() -> Iterator[None]:
    """Stop every search indexer a test started (apps made outside the ``app`` fixture
    too): one left polling a deleted database would log failures into later tests."""
    yield
    from app.search import worker

    worker.stop_all()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def app(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    config: dict[str, object] = {
        "TESTING": True,
        # argon2's cheapest profile: the tests check hashing is used, not its cost.
        "PASSWORD_HASH_PROFILE": "cheapest",
        "SECRET_KEY": "test-secret-" + uuid.uuid4().hex,
        "REPOS_ROOT": tmp_path / "repos",
        "VAR_DIR": tmp_path,
        "RATELIMIT_NAMESPACE": f"quire-test-{_worker()}-{uuid.uuid4().hex[:8]}",
    }
    if backend == "postgresql":
        config["DATABASE_URL"] = request.getfixturevalue("postgres_url")
        config["REDIS_URL"] = request.getfixturevalue("redis_url")
        config["RATELIMIT_STORAGE_URI"] = config["REDIS_URL"]
    else:
        config["DATABASE_URL"] = request.getfixturevalue("sqlite_url")
        config["RATELIMIT_STORAGE_URI"] = "memory://"
    application = create_app(config)
    _empty_tables(application)
    yield application
    with application.app_context():
        db.get_db().remove()
        db.get_db().engine.dispose()


def _empty_tables(application: Flask) -> None:
    engine = application.extensions["quire.db"].engine
    with engine.begin() as conn:
        tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
        if engine.dialect.name == "postgresql":
            # TRUNCATE replaces each table's files, which costs more than the test itself
            # for ~40 tables; most are empty, so find the ones with rows in one query.
            probe = " UNION ALL ".join(
                f"SELECT '{t}' WHERE EXISTS (SELECT 1 FROM \"{t}\")" for t in tables
            )
            used = [row[0] for row in conn.execute(text(probe))]
            if used:
                names = ", ".join(f'"{t}"' for t in used)
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            present = set(conn.scalars(text("SELECT name FROM sqlite_master")))
            for table in tables:
                if table in present:  # some tables exist on PostgreSQL only
                    conn.execute(text(f'DELETE FROM "{table}"'))


CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class Browserish(FlaskClient):
    """A test client that fills in the CSRF token the way a browser form would."""

    def csrf_token(self, page: str = "/login") -> str:
        html = self.get(page).get_data(as_text=True)
        match = CSRF_RE.search(html)
        assert match, f"no CSRF token on {page}"
        return match.group(1)

    def submit(
        self, url: str, data: dict[str, object] | None = None, *, page: str | None = None, **kwargs
    ):
        form = dict(data or {})
        form.setdefault("csrf_token", self.csrf_token(page or url))
        return self.post(url, data=form, **kwargs)


@pytest.fixture
def client(app: Flask) -> Browserish:
    app.test_client_class = Browserish
    return app.test_client()  # type: ignore[return-value]


class Accounts:
    """Creates users and signs them in; returns tokens for API calls."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def create(self, username: str, *, admin: bool = False, password: str = PASSWORD):
        from app.accounts.services import create_user

        with self.app.app_context():
            user = create_user(username, f"{username}@example.com", password, admin=admin)
            db.session().expunge(user)
            return user

    def token(self, username: str) -> str:
        from app.accounts.services import create_token, get_user_by_username

        with self.app.app_context():
            _, secret = create_token(get_user_by_username(username), "tests")
            return secret

    def login(self, client: Browserish, username: str, password: str = PASSWORD):
        return client.submit("/login", {"login": username, "password": password})


@pytest.fixture
def accounts(app: Flask) -> Accounts:
    return Accounts(app)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001
    """Report how many database tests ran on each backend."""
    counts: dict[str, dict[str, int]] = {}
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(report, "nodeid", "")
            for backend in ("sqlite", "postgresql"):
                in_name = f"[{backend}" in nodeid or f"-{backend}" in nodeid
                if in_name and (report.when == "call" or outcome in ("skipped", "error")):
                    counts.setdefault(backend, {}).setdefault(outcome, 0)
                    counts[backend][outcome] += 1
    if counts:
        terminalreporter.section("database backends")
        for backend in ("sqlite", "postgresql"):
            detail = counts.get(backend, {})
            summary = ", ".join(f"{n} {k}" for k, n in sorted(detail.items())) or "none"
            terminalreporter.write_line(f"{backend}: {summary}")
