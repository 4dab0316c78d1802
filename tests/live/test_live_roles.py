"""Role changes take effect on open sockets (issue 4, "The editor").

A stock y-websocket client (node) stays connected while its membership changes in
the database: losing edit rights closes the socket with 4409 (the client
reconnects as a viewer and its updates are dropped from then on); losing read
access closes it with 4403.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.live.conftest import Server

pytestmark = pytest.mark.slow

FILE = "document.md"
ROLE_CHANGED = 4409
ACCESS_REVOKED = 4403


def _db(server: Server, sql: str, *args: Any) -> None:
    with sqlite3.connect(server.var_dir / "quire.db") as conn:
        conn.execute(sql, args)


def _closes(agent, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while True:
        closes = agent.do("text")["closes"]
        if len(closes) >= count or time.monotonic() > deadline:
            return closes
        time.sleep(0.2)


def test_role_changes_reach_open_sockets(server, agents) -> None:
    ada, bob = server.user("ada"), server.user("bob")
    slug = server.api("POST", "/documents", ada, {"title": "Roles", "visibility": "private"})[
        "slug"
    ]
    with sqlite3.connect(server.var_dir / "quire.db") as conn:
        (doc_id,) = conn.execute("SELECT id FROM documents WHERE slug = ?", (slug,)).fetchone()
    bob_id = server.api("GET", "/user", bob)["id"]
    _db(
        server,
        "INSERT INTO memberships (document_id, user_id, role, created_at) VALUES (?, ?, ?, ?)",
        doc_id,
        bob_id,
        "editor",
        datetime.now(UTC).replace(tzinfo=None).isoformat(" "),
    )
    room = f"{slug}/main/{FILE}"
    a = agents(server, room, ada, "ada")
    b = agents(server, room, bob, "bob")
    a.synced()
    b.synced()
    b.do("append", text="Bob as editor.\n")
    a.wait_for("Bob as editor.")

    # Editor -> viewer: the socket is closed with ROLE_CHANGED; the client reconnects
    # as a viewer and what it sends from then on never reaches the room.
    _db(server, "UPDATE memberships SET role = 'viewer' WHERE user_id = ?", bob_id)
    closes = _closes(b, 1)
    assert [c["code"] for c in closes] == [ROLE_CHANGED], server.tail()
    b.synced()
    b.do("append", text="VIEWER SPAM\n")
    a.do("append", text="Ada still edits.\n")
    b.wait_for("Ada still edits.")  # the viewer still sees live changes
    time.sleep(1.0)
    assert "VIEWER" not in a.text()

    # Read access gone: closed with ACCESS_REVOKED (and the upgrade is refused after).
    _db(server, "DELETE FROM memberships WHERE user_id = ?", bob_id)
    closes = _closes(b, 2)
    assert closes[1]["code"] == ACCESS_REVOKED, closes

    # Bob's edit as an editor is committed; nothing he typed as a viewer is.
    deadline = time.monotonic() + 15
    text = ""
    while time.monotonic() < deadline:
        text = server.api("GET", f"/documents/{slug}/files/{FILE}", ada)["content"]
        if "Ada still edits." in text:
            break
        time.sleep(0.3)
    assert "Bob as editor." in text and "Ada still edits." in text
    assert "VIEWER" not in text
