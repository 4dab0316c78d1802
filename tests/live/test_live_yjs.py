"""Stock Yjs clients (npm y-websocket) against a real gunicorn + gevent Quire.

Acceptance (issue 4): two clients converge with the server, a late joiner gets the
full text, a viewer's update is dropped, a commit names both editors, every edit
survives SIGKILL exactly once, and an API save during live editing is merged in.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest

from tests.live.conftest import Server

pytestmark = pytest.mark.slow

FILE = "document.md"


def _setup(server: Server) -> dict[str, Any]:
    """ada owns a public document; bob (site admin) may edit it; vic may only view."""
    ada, bob, vic = server.user("ada"), server.user("bob", admin=True), server.user("vic")
    created = server.api("POST", "/documents", ada, {"title": "Live notes", "visibility": "public"})
    slug = created["slug"]
    return {"ada": ada, "bob": bob, "vic": vic, "slug": slug, "room": f"{slug}/main/{FILE}"}


def _git_text(server: Server, token: str, slug: str) -> str:
    return server.api("GET", f"/documents/{slug}/files/{FILE}", token)["content"]


def _commits(server: Server, token: str, slug: str) -> list[dict[str, Any]]:
    return server.api("GET", f"/documents/{slug}/commits", token)["commits"]


def _eventually(check, timeout: float = 15.0, interval: float = 0.2) -> Any:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def test_two_editors_converge_viewer_dropped_and_commit_names_both(server, agents) -> None:
    s = _setup(server)
    a = agents(server, s["room"], s["ada"], "ada")
    b = agents(server, s["room"], s["bob"], "bob")
    v = agents(server, s["room"], s["vic"], "vic")
    for agent in (a, b, v):
        agent.synced()
    assert a.text() == "# Live notes\n", "seeded once from Git, not duplicated"

    a.do("append", text="Ada was here.\n")
    b.wait_for("Ada was here.")
    b.do("append", text="Bob too.\n")
    v.do("append", text="VIEWER SPAM\n")  # applied locally, dropped by the server
    a.wait_for("Bob too.")
    time.sleep(0.5)
    expected = "# Live notes\nAda was here.\nBob too.\n"
    assert a.text() == b.text() == expected

    late = agents(server, s["room"], s["ada"], "late")
    late.synced()
    assert late.wait_for("Bob too.") == expected, "a late joiner gets the full text"

    def committed() -> dict[str, Any] | None:
        head = _commits(server, s["ada"], s["slug"])[0]
        return head if head["summary"].startswith("Live edit") else None

    head = _eventually(committed)
    assert head, server.tail()
    assert head["author"]["name"] == "ada"
    assert [c["name"] for c in head["co_authors"]] == ["bob"]
    assert "Co-authored-by: bob <bob@example.com>" in head["message"]
    assert _git_text(server, s["ada"], s["slug"]) == expected
    assert "VIEWER" not in _git_text(server, s["ada"], s["slug"])


def test_every_edit_survives_sigkill_exactly_once(server, agents) -> None:
    s = _setup(server)
    a = agents(server, s["room"], s["ada"], "ada")
    b = agents(server, s["room"], s["bob"], "bob")
    a.synced()
    b.synced()
    lines = [f"line {i} from {who}\n" for i in range(5) for who in ("ada", "bob")]
    for line in lines:
        (a if "ada" in line else b).do("append", text=line)
    for line in lines:  # every edit reached another client (so it was broadcast)
        (b if "ada" in line else a).wait_for(line)
    a.close()
    b.close()
    server.kill(signal.SIGKILL)  # before the quiet period: nothing committed yet
    server.start()

    def recovered() -> str | None:
        text = _git_text(server, s["ada"], s["slug"])
        return text if all(line in text for line in lines) else None

    text = _eventually(recovered, timeout=20)
    assert text, server.tail()
    for line in lines:
        assert text.count(line) == 1, f"{line!r} not exactly once in {text!r}"
    assert text.count("# Live notes") == 1
    authors = {c["author"]["name"] for c in _commits(server, s["ada"], s["slug"])[:3]}
    assert "ada" in authors or "bob" in authors


def test_api_save_during_live_editing_is_merged(server, agents) -> None:
    s = _setup(server)
    start = "# Live notes\n\nFirst paragraph.\n\nSecond paragraph.\n"
    head = _commits(server, s["ada"], s["slug"])[0]["oid"]
    server.api(
        "PUT",
        f"/documents/{s['slug']}/files/{FILE}",
        s["ada"],
        {"content": start, "parent": head, "message": "Two paragraphs"},
    )
    a = agents(server, s["room"], s["ada"], "ada")
    b = agents(server, s["room"], s["bob"], "bob")
    a.synced()
    b.synced()
    a.wait_for("Second paragraph.")
    a.do("insert", index=len("# Live notes\n\nFirst paragraph."), text=" Typed live.")
    b.wait_for("Typed live.")

    # Meanwhile someone saves through the API from the head before the live edit.
    server.api(
        "PUT",
        f"/documents/{s['slug']}/files/{FILE}",
        s["bob"],
        {
            "content": start.replace("Second paragraph.", "Second paragraph, saved."),
            "parent": _commits(server, s["ada"], s["slug"])[0]["oid"],
            "message": "Saved from the API",
        },
    )
    expected = "# Live notes\n\nFirst paragraph. Typed live.\n\nSecond paragraph, saved.\n"
    assert a.wait_for("saved.") == expected
    assert b.wait_for("saved.") == expected

    def both_in_git() -> bool:
        return _git_text(server, s["ada"], s["slug"]) == expected

    assert _eventually(both_in_git), server.tail()


def test_same_words_changed_live_and_by_api_keeps_both_and_notifies(server, agents) -> None:
    """Acceptance 5, same-words case: both versions stay in the text, editors get a notice.

    The notice is an entry of the document's ``Y.Map`` named ``notices``.
    """
    s = _setup(server)
    start = "# Live notes\n\nThe cat sat on the mat.\n"
    head = _commits(server, s["ada"], s["slug"])[0]["oid"]
    server.api(
        "PUT",
        f"/documents/{s['slug']}/files/{FILE}",
        s["ada"],
        {"content": start, "parent": head, "message": "A cat"},
    )
    base = _commits(server, s["ada"], s["slug"])[0]["oid"]
    a = agents(server, s["room"], s["ada"], "ada")
    b = agents(server, s["room"], s["bob"], "bob")
    a.synced()
    b.synced()
    a.wait_for("The cat sat")
    assert a.do("replace", **{"from": "cat", "to": "dog"})["ok"]
    b.wait_for("The dog sat")
    server.api(
        "PUT",
        f"/documents/{s['slug']}/files/{FILE}",
        s["bob"],
        {"content": start.replace("cat", "bird"), "parent": base, "message": "A bird"},
    )
    expected = "# Live notes\n\nThe dog bird sat on the mat.\n"
    assert a.wait_for("bird") == expected
    assert b.wait_for("bird") == expected
    notices = list(b.do("notices")["notices"].values())
    assert len(notices) == 1, notices
    assert notices[0]["kind"] == "conflict" and notices[0]["conflicts"] == 1
    assert "both versions are kept" in notices[0]["message"]
    late = agents(server, s["room"], s["bob"], "late")
    late.synced()
    assert list(late.do("notices")["notices"].values()) == notices, "late joiners see it too"

    def both_in_git() -> bool:
        return _git_text(server, s["ada"], s["slug"]) == expected

    assert _eventually(both_in_git), server.tail()


def test_undecodable_update_is_rejected_and_room_stays_healthy(server, agents) -> None:
    s = _setup(server)
    a = agents(server, s["room"], s["ada"], "ada")
    bad = agents(server, s["room"], s["bob"], "bad")
    a.synced()
    bad.synced()
    bad.do("raw", hex="0002050102030405")  # a sync update whose payload is not an update
    reply = bad.do("waitclose")
    assert reply["ok"] and reply["closes"][0]["code"] == 4400, reply
    a.do("append", text="still fine\n")
    bad.synced()  # the client reconnects and resyncs
    assert bad.wait_for("still fine") == "# Live notes\nstill fine\n"
