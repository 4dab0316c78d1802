"""/up and /ready: each dependency failing, and recovering when it returns."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text


def free_port() -> int:
    """A port that was bound and closed again: nothing listens there."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_up_checks_nothing(app):
    app.config["DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"
    response = app.test_client().get("/up")
    assert response.status_code == 200
    assert response.get_json() == {"status": "up"}


def test_ready_when_everything_answers(app, backend):
    response = app.test_client().get("/ready")
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "redis", "repositories"}
    assert all(check["ok"] for check in body["checks"].values())
    if backend == "sqlite":
        assert body["checks"]["redis"]["skipped"] is True
    else:
        assert "skipped" not in body["checks"]["redis"]


def test_redis_on_a_dead_port_fails_then_recovers(app, backend):
    good = app.config.get("REDIS_URL") or ""
    client = app.test_client()
    app.config["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    response = client.get("/ready")
    assert time.monotonic() - started < 5
    body = response.get_json()
    assert response.status_code == 503
    assert body["status"] == "unready"
    assert body["checks"]["redis"]["ok"] is False
    assert "error" in body["checks"]["redis"]
    assert body["checks"]["database"]["ok"] is True
    app.config["REDIS_URL"] = good
    assert client.get("/ready").status_code == 200


def test_missing_database_fails_then_recovers(app, backend, tmp_path):
    good = app.config["DATABASE_URL"]
    client = app.test_client()
    if backend == "postgresql":
        base = good.rpartition("/")[0]
        app.config["DATABASE_URL"] = f"{base}/quire_no_such_database"
    else:
        app.config["DATABASE_URL"] = f"sqlite:///{tmp_path / 'absent' / 'quire.db'}"
    response = client.get("/ready")
    body = response.get_json()
    assert response.status_code == 503, body
    assert body["checks"]["database"]["ok"] is False
    assert body["checks"]["database"]["error"]
    assert body["checks"]["repositories"]["ok"] is True
    app.config["DATABASE_URL"] = good
    assert client.get("/ready").status_code == 200


def test_database_refusing_connections_then_returning(app, backend):
    """PostgreSQL stops accepting connections to our database, then accepts again."""
    if backend != "postgresql":
        pytest.skip("SQLite has no server to stop")
    url = app.config["DATABASE_URL"]
    name = url.rpartition("/")[2]
    admin = create_engine(
        url.rpartition("/")[0].replace("postgresql://", "postgresql+psycopg://", 1) + "/postgres",
        isolation_level="AUTOCOMMIT",
    )
    client = app.test_client()
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        body = client.get("/ready").get_json()
        assert body["status"] == "unready"
        assert body["checks"]["database"]["ok"] is False
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()
    assert client.get("/ready").status_code == 200


@pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server is not installed")
def test_redis_stopped_and_restarted(app, tmp_path):
    """A Redis of the test's own (never the machine's) is stopped and started again."""
    port = free_port()
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
           "--appendonly", "no", "--dir", str(tmp_path)]  # fmt: skip

    def start() -> subprocess.Popen:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return proc
            time.sleep(0.05)
        proc.kill()
        raise AssertionError("redis-server did not start")

    app.config["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    client = app.test_client()
    proc = start()
    try:
        assert client.get("/ready").status_code == 200
        proc.terminate()
        proc.wait(10)
        response = client.get("/ready")
        assert response.status_code == 503
        assert response.get_json()["checks"]["redis"]["ok"] is False
        proc = start()
        assert client.get("/ready").status_code == 200
    finally:
        proc.kill()
        proc.wait(10)


def test_repositories_volume_unwritable_then_back(app, tmp_path):
    good = app.config["REPOS_ROOT"]
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the volume should be")
    app.config["REPOS_ROOT"] = blocker / "repos"
    client = app.test_client()
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.get_json()["checks"]["repositories"]["ok"] is False
    app.config["REPOS_ROOT"] = good
    assert client.get("/ready").status_code == 200
    assert not [p for p in Path(good).iterdir() if p.name.startswith(".ready-")]
