"""Live editing across processes (issue 4, acceptance 4): two gunicorn servers.

Two separate servers on different ports share what production shares — one
PostgreSQL database (a fresh one per test), ``REPOS_ROOT`` and Redis (a key and
channel prefix of the test's own) — and each has one stock y-websocket client
(node). They converge (text and cursors), every batch becomes exactly one commit,
and a server killed with SIGKILL or stopped with SIGTERM loses nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL, _pg_url, _unavailable
from tests.live.conftest import Server, _free_port

pytestmark = pytest.mark.slow

FILE = "document.md"
GOING_AWAY = 1001


@dataclass
class Cluster:
    a: Server
    b: Server
    database_url: str


def _database() -> Iterator[str]:
    admin_url = TEST_DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    name = f"quire_live_mp_{uuid.uuid4().hex[:10]}"
    try:
        engine = create_engine(
            admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
        )
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "unavailable"
        _unavailable("PostgreSQL at " + TEST_DATABASE_URL, exc)
    try:
        yield _pg_url(name)
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@contextlib.contextmanager
def two_servers(
    tmp_path: Path, label: str, **extra_env: str
) -> Iterator[tuple[Server, Server, str]]:
    """Two Quire servers (not started) on one fresh PostgreSQL database, REPOS_ROOT and Redis.

    Yields both and the database URL; on exit stops them, drops the database and removes
    the Redis keys under this pair's own prefix (pub/sub channels ignore db numbers).
    """
    import redis

    try:
        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001
        _unavailable("Redis at " + TEST_REDIS_URL, exc)
    prefix = f"quire-{label}-{uuid.uuid4().hex[:10]}:"
    gen = _database()
    database_url = next(gen)
    servers = []
    for name in ("a", "b"):
        var_dir = tmp_path / name
        var_dir.mkdir()
        port = _free_port()
        env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "QUIRE_VAR_DIR": str(var_dir),
            "DATABASE_URL": database_url,
            "REPOS_ROOT": str(tmp_path / "repos"),
            "REDIS_URL": TEST_REDIS_URL,
            "LIVE_REDIS_PREFIX": prefix,
            "SECRET_KEY": f"{label}-secret",
            "LIVE_COMMIT_QUIET_SECONDS": "1",
            "LIVE_COMMIT_MAX_SECONDS": "5",
            "LIVE_HEAD_POLL_SECONDS": "0.5",
            "LIVE_LOCK_TTL_SECONDS": "3",
            "ACCESS_LOG": str(var_dir / "access.log"),
            **extra_env,
        }
        servers.append(Server(var_dir, port, env))
    try:
        yield servers[0], servers[1], database_url
    finally:
        for srv in servers:
            if srv.proc is not None and srv.proc.poll() is None:
                srv.kill(signal.SIGTERM)
        gen.close()
        client = redis.Redis.from_url(TEST_REDIS_URL)
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)


@pytest.fixture
def cluster(tmp_path: Path, node_client: Path) -> Iterator[Cluster]:
    with two_servers(tmp_path, "live-test") as (a, b, database_url):
        a.flask("db", "upgrade")
        a.start()
        b.start()
        yield Cluster(a, b, database_url)


def _setup(server: Server) -> dict[str, Any]:
    ada, bob = server.user("ada"), server.user("bob", admin=True)
    created = server.api("POST", "/documents", ada, {"title": "Live notes", "visibility": "public"})
    slug = created["slug"]
    return {"ada": ada, "bob": bob, "slug": slug, "room": f"{slug}/main/{FILE}"}


def _git_text(server: Server, token: str, slug: str) -> str:
    return server.api("GET", f"/documents/{slug}/files/{FILE}", token)["content"]


def _live_commits(server: Server, token: str, slug: str) -> list[dict[str, Any]]:
    commits = server.api("GET", f"/documents/{slug}/commits", token)["commits"]
    return [c for c in commits if c["summary"].startswith("Live edit")]


def _eventually(check, timeout: float = 20.0, interval: float = 0.2) -> Any:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def _logs(c: Cluster) -> str:
    return f"--- server a ---\n{c.a.tail()}\n--- server b ---\n{c.b.tail()}"


def test_two_servers_converge_and_commit_each_batch_once(cluster: Cluster, agents) -> None:
    c = cluster
    s = _setup(c.a)
    a = agents(c.a, s["room"], s["ada"], "ada")
    b = agents(c.b, s["room"], s["bob"], "bob")
    a.synced()
    b.synced()
    assert a.text() == b.text() == "# Live notes\n", "seeded once, not once per server"

    a.do("append", text="Ada on server A.\n")
    b.wait_for("Ada on server A.")
    b.do("append", text="Bob on server B.\n")
    a.wait_for("Bob on server B.")
    expected = "# Live notes\nAda on server A.\nBob on server B.\n"
    assert a.text() == b.text() == expected

    # Cursors/presence cross servers too.
    assert a.do("peers", name="bob", timeout=10_000)["ok"], a.do("peers")
    assert b.do("peers", name="ada", timeout=10_000)["ok"], b.do("peers")

    late = agents(c.b, s["room"], s["ada"], "late")
    late.synced()
    assert late.wait_for("Bob on server B.") == expected, "a late joiner gets the full text"

    first = _eventually(lambda: _live_commits(c.a, s["ada"], s["slug"]))
    assert first, _logs(c)
    time.sleep(3)  # both servers' batchers were due: only one may have committed
    commits = _live_commits(c.b, s["ada"], s["slug"])
    assert len(commits) == 1, (commits, _logs(c))
    assert {commits[0]["author"]["name"], *(x["name"] for x in commits[0]["co_authors"])} == {
        "ada",
        "bob",
    }
    assert _git_text(c.b, s["ada"], s["slug"]) == expected

    # A second batch, typed on both servers: one more commit, not two.
    b.do("append", text="Second batch from B.\n")
    a.do("append", text="Second batch from A.\n")
    a.wait_for("Second batch from B.")
    b.wait_for("Second batch from A.")
    assert _eventually(lambda: len(_live_commits(c.a, s["ada"], s["slug"])) >= 2), _logs(c)
    time.sleep(3)
    assert len(_live_commits(c.a, s["ada"], s["slug"])) == 2, _logs(c)
    final = _git_text(c.a, s["ada"], s["slug"])
    assert final == a.text() == b.text()
    for line in (
        "Ada on server A.",
        "Bob on server B.",
        "Second batch from A.",
        "Second batch from B.",
    ):
        assert final.count(line) == 1


def test_sigkill_of_one_server_loses_nothing(cluster: Cluster, agents) -> None:
    c = cluster
    s = _setup(c.a)
    a = agents(c.a, s["room"], s["ada"], "ada")
    b = agents(c.b, s["room"], s["bob"], "bob")
    a.synced()
    b.synced()
    before = [f"before {i} from {who}\n" for i in range(4) for who in ("ada", "bob")]
    for line in before:
        (a if "ada" in line else b).do("append", text=line)
    for line in before:  # every edit reached the other server's client
        (b if "ada" in line else a).wait_for(line)

    c.a.kill(signal.SIGKILL)  # mid-session, before the quiet period

    after = [f"after {i} from bob\n" for i in range(4)]
    for line in after:  # the surviving client keeps editing
        b.do("append", text=line)
        time.sleep(0.1)

    every = before + after

    def complete() -> str | None:
        text_ = _git_text(c.b, s["bob"], s["slug"])
        return text_ if all(line in text_ for line in every) else None

    final = _eventually(complete, timeout=30)
    assert final, _logs(c)
    time.sleep(2)
    final = _git_text(c.b, s["bob"], s["slug"])
    for line in every:
        assert final.count(line) == 1, f"{line!r} not exactly once in {final!r}"
    assert final.count("# Live notes") == 1
    assert final == b.text()


def test_sigterm_commits_closes_with_going_away_and_clients_move(cluster: Cluster, agents) -> None:
    c = cluster
    s = _setup(c.a)
    a = agents(c.a, s["room"], s["ada"], "ada")
    b = agents(c.b, s["room"], s["bob"], "bob")
    a.synced()
    b.synced()
    lines = [f"line {i} from ada\n" for i in range(4)]
    for line in lines:
        a.do("append", text=line)
    b.wait_for(lines[-1])

    a.do("server", url=c.b.ws_url)  # the load balancer sends new connections to B
    started = time.monotonic()
    c.a.kill(signal.SIGTERM)  # returns once server A has exited
    stopped_in = time.monotonic() - started
    assert stopped_in < 10, f"SIGTERM took {stopped_in:.1f} s: sockets were not closed"
    closes = a.do("waitclose")["closes"]
    assert closes and closes[0]["code"] == GOING_AWAY, closes

    # A committed every room before exiting.
    committed = _git_text(c.b, s["ada"], s["slug"])
    assert all(line in committed for line in lines), (committed, _logs(c))

    a.synced()  # reconnected, to server B
    a.do("append", text="ada again, through B\n")
    b.wait_for("ada again, through B")
    every = [*lines, "ada again, through B\n"]

    def complete() -> str | None:
        text_ = _git_text(c.b, s["ada"], s["slug"])
        return text_ if all(line in text_ for line in every) else None

    final = _eventually(complete)
    assert final, _logs(c)
    for line in every:
        assert final.count(line) == 1, f"{line!r} not exactly once in {final!r}"
    assert final == a.text() == b.text()
