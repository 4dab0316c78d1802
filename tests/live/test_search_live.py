"""A live commit (a stock Yjs client typing into a room) reaches the search index.

Live commits do not send ``ref_updated``; the search package subscribes to the hub's
``after_commit`` hook instead. The server is gunicorn + gevent, on SQLite and on
PostgreSQL; the test polls the search API and fails if the typed words are not
findable within 5 s of the commit.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.live.conftest import Server, _free_port

pytestmark = pytest.mark.slow

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
DEADLINE = 5.0


@pytest.fixture(params=["sqlite", "postgresql"])
def search_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    drop = None
    database_url = f"sqlite:///{var_dir / 'quire.db'}"
    if request.param == "postgresql":
        admin = TEST_DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1)
        name = f"quire_live_search_{uuid.uuid4().hex[:10]}"
        try:
            engine = create_engine(
                admin, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
            )
            with engine.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:  # noqa: BLE001 - unreachable means unavailable
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(f"PostgreSQL unreachable: {exc}")
            pytest.skip(f"PostgreSQL unreachable: {exc}")
        database_url = TEST_DATABASE_URL.rpartition("/")[0] + f"/{name}"

        def drop() -> None:
            with engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            engine.dispose()

    port = _free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "QUIRE_VAR_DIR": str(var_dir),
        "DATABASE_URL": database_url,
        "REPOS_ROOT": str(var_dir / "repos"),
        "SECRET_KEY": "live-search-secret",
        "LIVE_COMMIT_QUIET_SECONDS": "1",
        "LIVE_COMMIT_MAX_SECONDS": "5",
        "LIVE_HEAD_POLL_SECONDS": "0.5",
        "ACCESS_LOG": str(var_dir / "access.log"),
        "REDIS_URL": "",
    }
    srv = Server(var_dir, port, env)
    srv.flask("db", "upgrade")
    srv.start()
    try:
        yield srv
    finally:
        if srv.proc is not None and srv.proc.poll() is None:
            srv.kill(signal.SIGTERM)
        if drop is not None:
            drop()


def _search(server: Server, token: str, q: str) -> dict[str, Any]:
    url = f"{server.base_url}/api/v1/search?q={urllib.parse.quote(q)}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _eventually(check, timeout: float) -> Any:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def test_live_commit_is_found_within_seconds(search_server: Server, agents) -> None:
    server = search_server
    ada = server.user("ada")
    created = server.api("POST", "/documents", ada, {"title": "Live log", "visibility": "private"})
    slug = created["slug"]
    agent = agents(server, f"{slug}/main/document.md", ada, "ada")
    agent.synced()
    assert _search(server, ada, "axolotl")["total"] == 0
    agent.do("append", text="\n## Pond\n\nan axolotl smiles\n")

    def committed() -> bool:
        head = server.api("GET", f"/documents/{slug}/commits", ada)["commits"][0]
        return head["summary"].startswith("Live edit")

    assert _eventually(committed, 15), server.tail()
    found = _eventually(lambda: _search(server, ada, "axolotl")["results"], DEADLINE)
    assert [(r["title"], r["heading"]) for r in found] == [("Live log", "Pond")], server.tail()
    assert "<mark>axolotl</mark>" in found[0]["snippet"]
