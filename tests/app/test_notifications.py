"""Notifications: in-app rows, email through a real SMTP server, settings, pages."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import re
import subprocess
import sys
import threading
import time

import pytest
from aiosmtpd.controller import Controller

from app import db
from app.accounts.services import get_user_by_username
from app.config import PROJECT_ROOT
from app.documents.services import create_document, set_member
from app.notifications.models import Notification
from app.notifications.services import KINDS, mark_read, notify, unread_count
from tests.ops.test_ready import free_port


class Inbox:
    """Every message the SMTP server accepted, parsed."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 OK"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [m for rcpts, m in self.messages if address in rcpts]


@pytest.fixture
def smtp(app):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{controller.port}"
    app.config["MAIL_FROM"] = "quire@quire.test"
    app.config["BASE_URL"] = "https://quire.test"
    yield inbox
    controller.stop()


def wait_for(predicate, timeout: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def settle() -> None:
    """Give a background sender that should not exist the chance to show itself."""
    time.sleep(0.5)


def _user(username: str):  # noqa: ANN202
    return get_user_by_username(username)


@pytest.fixture
def team(app, accounts):
    """An owner ("ann"), a reviewer ("bob"), an editor ("cat"), and a private document."""
    for name in ("ann", "bob", "cat", "dan"):
        accounts.create(name)
    with app.app_context():
        doc = create_document(_user("ann"), "Field guide")
        set_member(_user("ann"), doc, "bob", "reviewer")
        set_member(_user("ann"), doc, "cat", "editor")
        return doc.slug


def _doc(slug: str):  # noqa: ANN202
    from app.documents.services import get_document

    return get_document(slug)


def test_one_email_per_kind_to_the_right_person_with_the_link(app, smtp, team):
    with app.test_request_context():
        doc = _doc(team)
        for kind in KINDS:
            notify(
                [_user("bob")],
                kind,
                actor=_user("ann"),
                subject=f"{kind} on Field guide !1",
                body=f"Something about {kind}.",
                url=f"/d/{team}/merge-requests/1#{kind}",
                document=doc,
            )
            db.session().commit()
    wait_for(lambda: len(smtp.messages) == len(KINDS))
    got = {m["Subject"]: (rcpts, m) for rcpts, m in smtp.messages}
    for kind in KINDS:
        rcpts, message = got[f"{kind} on Field guide !1"]
        assert rcpts == ["bob@example.com"]
        assert message["To"] == "bob@example.com"
        assert message["From"] == "quire@quire.test"
        text = message.get_content()
        assert f"Something about {kind}." in text
        assert f"https://quire.test/d/{team}/merge-requests/1#{kind}" in text
        assert "https://quire.test/settings/notifications" in text
    with app.app_context():
        assert unread_count(_user("bob")) == len(KINDS)


def test_never_the_actor_never_twice_and_only_readers(app, smtp, team):
    with app.app_context():
        doc = _doc(team)
        ann, bob, cat, dan = (_user(n) for n in ("ann", "bob", "cat", "dan"))
        notify(
            [ann, bob, bob, cat, dan],
            "mentioned",
            actor=ann,
            subject="ann mentioned you",
            body="@bob @cat @dan look",
            url=f"/d/{team}",
            document=doc,
        )
        db.session().commit()
    wait_for(lambda: len(smtp.messages) == 2)
    settle()
    assert sorted(r for rcpts, _ in smtp.messages for r in rcpts) == [
        "bob@example.com",
        "cat@example.com",
    ]
    with app.app_context():
        counts = {n: unread_count(_user(n)) for n in ("ann", "bob", "cat", "dan")}
    # dan is no member of the private document; ann is the actor.
    assert counts == {"ann": 0, "bob": 1, "cat": 1, "dan": 0}


def test_a_user_who_lost_read_access_gets_nothing(app, smtp, team):
    from app.documents.services import remove_member

    with app.app_context():
        doc = _doc(team)
        remove_member(_user("ann"), doc, _user("cat").id)
        notify(
            [_user("bob"), _user("cat")],
            "merged",
            actor=_user("ann"),
            subject="Merged !2",
            body="Merged.",
            url=f"/d/{team}/merge-requests/2",
            document=doc,
        )
        db.session().commit()
    wait_for(lambda: len(smtp.messages) == 1)
    settle()
    assert smtp.messages[0][0] == ["bob@example.com"]
    assert smtp.to("cat@example.com") == []
    with app.app_context():
        assert unread_count(_user("cat")) == 0


def test_email_waits_for_the_callers_commit_and_a_rollback_sends_nothing(app, smtp, team):
    with app.app_context():
        doc = _doc(team)
        cat = _user("cat")
        cat.display_name = "Cat (reviewing)"  # the caller's own write, not yet committed
        notify(
            [_user("bob")],
            "approved",
            actor=cat,
            subject="Rolled back",
            body="x",
            url="/x",
            document=doc,
        )
        settle()
        assert smtp.messages == []  # not before the commit
        db.session().rollback()
        assert unread_count(_user("bob")) == 0
        assert _user("cat").display_name == ""

        cat = _user("cat")
        cat.display_name = "Cat (reviewing)"
        notify(
            [_user("bob")],
            "approved",
            actor=cat,
            subject="Committed",
            body="x",
            url="/x",
            document=doc,
        )
        settle()
        assert smtp.messages == []
        db.session().commit()
    wait_for(lambda: len(smtp.messages) == 1)
    settle()
    assert [m["Subject"] for _, m in smtp.messages] == ["Committed"]
    with app.app_context():
        assert unread_count(_user("bob")) == 1


def test_called_after_the_callers_commit_it_commits_its_own_rows(app, smtp, team):
    """As after a merge: the caller committed, then only read, and will not commit again."""
    with app.app_context():
        doc = _doc(team)
        cat = _user("cat")
        cat.display_name = "Cat"
        db.session().commit()
        bob = _user("bob")  # a read after the commit opens a new, read-only transaction
        assert db.session().in_transaction()
        notify([bob], "merged", actor=cat, subject="After", body="b", url="/y", document=doc)
        db.session().rollback()  # e.g. the request ends: the rows must already be stored
    wait_for(lambda: len(smtp.messages) == 1)
    with app.app_context():
        assert unread_count(_user("bob")) == 1


class GatedInbox(Inbox):
    """An SMTP server that holds every message until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate_was_open: list[bool] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
        # Blocking this server's own loop is fine: it serves only this test.
        self.gate_was_open.append(self.gate.wait(timeout=15))
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def gated_smtp(app):
    inbox = GatedInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{controller.port}"
    yield inbox
    inbox.gate.set()
    controller.stop()


def _notify_and_commit(app) -> None:  # noqa: ANN001
    with app.app_context():
        notify(
            [_user("bob")],
            "review_requested",
            actor=_user("ann"),
            subject="Review please",
            body="b",
            url="/r",
            document=_doc_by_owner("ann"),
        )
        db.session().commit()


def _doc_by_owner(username: str):  # noqa: ANN202
    from app.documents.models import Document

    return db.session().query(Document).filter_by(owner_id=_user(username).id).one()


def test_a_slow_smtp_server_never_holds_up_the_commit(app, gated_smtp, team):
    """Sent on the caller's path, the commit would return only once the server's gate
    timed out, and the server would record that the gate was never opened."""
    _notify_and_commit(app)
    gated_smtp.gate.set()  # only now may the server accept the message
    wait_for(lambda: len(gated_smtp.messages) == 1)
    assert gated_smtp.gate_was_open == [True]


GEVENT_CALLER = """
from gevent import monkey

monkey.patch_all()
import json, sys

from app import create_app
from tests.app.test_notifications import _notify_and_commit

app = create_app(json.loads(sys.argv[1]))
_notify_and_commit(app)
print("committed", flush=True)
import gevent

gevent.wait()  # the background greenlet delivers once the test opens the gate
print("done", flush=True)
"""


def _next_word(stream) -> str:  # noqa: ANN001
    """The next line the script printed itself (its logs are JSON lines on the same stream)."""
    for line in stream:
        if not line.startswith("{"):
            return line.strip()
    return "<end of output>"


def test_under_gevent_a_slow_smtp_server_never_holds_up_the_commit(app, gated_smtp, team):
    config = {
        k: str(app.config[k])
        for k in ("DATABASE_URL", "REPOS_ROOT", "VAR_DIR", "SECRET_KEY", "SMTP_URL")
    }
    config.update(TESTING=True, RATELIMIT_STORAGE_URI="memory://")
    caller = subprocess.Popen(
        [sys.executable, "-c", GEVENT_CALLER, json.dumps(config)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert _next_word(caller.stdout) == "committed"
        gated_smtp.gate.set()
        assert _next_word(caller.stdout) == "done"
        assert caller.wait(timeout=30) == 0
    finally:
        caller.kill()
    assert gated_smtp.gate_was_open == [True]
    assert [r for r, _ in gated_smtp.messages] == [["bob@example.com"]]


def test_smtp_down_does_not_fail_the_caller_and_is_logged(app, team, caplog):
    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{free_port()}"  # nothing listens there
    with caplog.at_level(logging.ERROR, logger="app.notifications.mail"):
        with app.app_context():
            doc = _doc(team)
            notify(
                [_user("bob")],
                "review_requested",
                actor=_user("ann"),
                subject="Review please",
                body="b",
                url="/z",
                document=doc,
            )
            db.session().commit()  # returns: sending happens elsewhere, and fails there
            assert unread_count(_user("bob")) == 1
        wait_for(lambda: any("failed" in r.getMessage() for r in caplog.records))
    record = next(r for r in caplog.records if "failed" in r.getMessage())
    assert record.exc_info and isinstance(record.exc_info[1], OSError)


def test_bad_input_is_logged_not_raised(app, team, caplog):
    with caplog.at_level(logging.ERROR, logger="app.notifications.services"), app.app_context():
        notify([_user("bob")], "no_such_kind", actor=None, subject="s", body="b", url="/")
        db.session().commit()
        assert unread_count(_user("bob")) == 0
    assert any("no_such_kind" in r.getMessage() for r in caplog.records)


def test_mark_read_only_touches_the_users_own_rows(app, team):
    with app.app_context():
        bob, cat = _user("bob"), _user("cat")
        for i in range(3):
            notify([bob, cat], "mentioned", actor=None, subject=f"m{i}", body="", url="/")
        db.session().commit()
        ids = [n.id for n in db.session().query(Notification).filter_by(user_id=bob.id)]
        cat_ids = [n.id for n in db.session().query(Notification).filter_by(user_id=cat.id)]
        mark_read(bob, [ids[0], cat_ids[0]])
        assert unread_count(bob) == 2 and unread_count(cat) == 3
        mark_read(bob)
        assert unread_count(bob) == 0 and unread_count(cat) == 3


BADGE_RE = re.compile(r'data-unread="(\d+)"')


def _badge(client) -> int | None:  # noqa: ANN001
    match = BADGE_RE.search(client.get("/documents").get_data(as_text=True))
    return int(match.group(1)) if match else None


def test_a_kind_turned_off_sends_no_email_but_keeps_the_in_app_item(
    app, smtp, team, client, accounts
):
    user = _user
    accounts.login(client, "bob")
    page = client.get("/settings/notifications").get_data(as_text=True)
    assert page.count('type="checkbox"') == len(KINDS) and page.count(" checked") == len(KINDS)
    kept = [k for k in KINDS if k != "approved"]
    response = client.submit("/settings/notifications", {"email": kept})
    assert response.status_code == 302
    page = client.get("/settings/notifications").get_data(as_text=True)
    assert 'value="approved">' in page and page.count(" checked") == len(KINDS) - 1
    with app.app_context():
        doc = _doc(team)
        for kind in ("approved", "merged"):
            notify(
                [user("bob")],
                kind,
                actor=user("ann"),
                subject=f"{kind} !3",
                body="b",
                url=f"/d/{team}",
                document=doc,
            )
        db.session().commit()
    wait_for(lambda: len(smtp.messages) == 1)
    settle()
    assert [m["Subject"] for _, m in smtp.messages] == ["merged !3"]
    listing = client.get("/notifications").get_data(as_text=True)
    assert "approved !3" in listing and "merged !3" in listing
    assert _badge(client) == 2


def test_settings_reject_an_unknown_kind(app, team, client, accounts):
    accounts.login(client, "bob")
    response = client.submit("/settings/notifications", {"email": ["merged", "bogus"]})
    assert response.status_code == 400
    assert "bogus" in response.get_data(as_text=True)


def test_unread_count_and_mark_read_through_the_pages(app, team, client, accounts):
    accounts.login(client, "bob")
    assert _badge(client) == 0
    html = client.get("/documents").get_data(as_text=True)
    assert "notification-badge" not in html  # no badge at zero
    with app.app_context():
        doc = _doc(team)
        for i in range(3):
            notify(
                [_user("bob")],
                "mentioned",
                actor=_user("ann"),
                subject=f"Mention {i}",
                body=f"@bob see paragraph {i}",
                url=f"/d/{team}#p{i}",
                document=doc,
            )
        db.session().commit()
    html = client.get("/documents").get_data(as_text=True)
    assert _badge(client) == 3
    assert "(3 unread)" in html  # the badge's accessible label
    listing = client.get("/notifications").get_data(as_text=True)
    subjects = re.findall(r"Mention (\d)", listing)
    assert subjects == ["2", "1", "0"]  # newest first
    assert listing.count("notification-unread") == 3
    ids = [int(i) for i in re.findall(r'data-notification="(\d+)"', listing)]

    # Opening one goes to its link and marks it read.
    response = client.get(f"/notifications/{ids[0]}")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/d/{team}#p2"
    assert _badge(client) == 2
    listing = client.get("/notifications").get_data(as_text=True)
    assert listing.count("notification-unread") == 2

    # Someone else's notification is not found.
    accounts.create("eve")
    other = app.test_client_class(app)
    accounts.login(other, "eve")
    assert other.get(f"/notifications/{ids[1]}").status_code == 404
    assert _badge(client) == 2

    # Mark all read.
    response = client.submit("/notifications/read", page="/notifications")
    assert response.status_code == 302
    assert _badge(client) == 0
    assert "notification-unread" not in client.get("/notifications").get_data(as_text=True)


def test_pages_need_a_signed_in_user(client):
    for url in ("/notifications", "/settings/notifications"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert "data-unread" not in client.get("/documents").get_data(as_text=True)
    assert client.get("/notifications?before=abc").status_code == 302  # login first, always


def test_bad_paging_is_a_400(app, team, client, accounts):
    accounts.login(client, "bob")
    assert client.get("/notifications?before=abc").status_code == 400
    assert "No older notifications" in client.get("/notifications?before=1").get_data(as_text=True)


def test_a_stored_link_elsewhere_is_not_followed(app, team, client, accounts):
    accounts.login(client, "bob")
    with app.app_context():
        notify(
            [_user("bob")], "mentioned", actor=None, subject="s", body="", url="https://evil.test/"
        )
        notify([_user("bob")], "mentioned", actor=None, subject="s", body="", url="//evil.test/")
        db.session().commit()
    ids = re.findall(
        r'data-notification="(\d+)"', client.get("/notifications").get_data(as_text=True)
    )
    for i in ids:
        assert client.get(f"/notifications/{i}").headers["Location"] == "/notifications"


# --- end to end: through the merge request and review routes ------------------------------

MR_PATH = "/d/{slug}/merge-requests/1"


@pytest.fixture
def opened(app, client, team, accounts):
    """cat (editor) edits a branch and opens merge request !1 through the web; dan is a
    viewer. Returns signed-in clients by name; ``client`` makes them CSRF-aware."""
    from app.documents.services import DEFAULT_FILE, create_branch, save_file

    with app.app_context():
        doc = _doc(team)
        cat = _user("cat")
        set_member(_user("ann"), doc, "dan", "viewer")
        head = create_branch(cat, doc, "draft", "main")
        save_file(
            cat,
            doc,
            branch="draft",
            path=DEFAULT_FILE,
            content="# Field guide\n\nBirds of the coast.\n",
            message="Birds",
            parent=head,
        )
    clients = {}
    for name in ("ann", "bob", "cat"):
        clients[name] = app.test_client()
        accounts.login(clients[name], name)
    response = clients["cat"].submit(
        f"/d/{team}/merge-requests/new",
        {"source": "draft", "target": "main", "title": "Birds", "description": "Adds birds."},
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(MR_PATH.format(slug=team))
    return clients


def _mails_to(inbox: Inbox, address: str, count: int) -> list[email.message.EmailMessage]:
    wait_for(lambda: len(inbox.to(address)) >= count)
    return inbox.to(address)


def _assert_links_to(message: email.message.EmailMessage, slug: str, tail: str = "") -> None:
    assert f"https://quire.test{MR_PATH.format(slug=slug)}{tail}" in message.get_content()


def test_review_requested_through_the_reviewers_route(app, smtp, team, opened):
    mr = MR_PATH.format(slug=team)
    response = opened["cat"].submit(f"{mr}/reviewers", {"username": "bob"}, page=mr)
    assert response.status_code == 302
    (message,) = _mails_to(smtp, "bob@example.com", 1)
    assert message["Subject"] == "cat asked for your review on !1: Birds"
    _assert_links_to(message, team)
    settle()
    assert [r for r, _ in smtp.messages] == [["bob@example.com"]]  # not the requester


def test_changes_requested_through_the_review_route(app, smtp, team, opened):
    mr = MR_PATH.format(slug=team)
    response = opened["bob"].submit(f"{mr}/reviews", {"verdict": "request_changes"}, page=mr)
    assert response.status_code == 302
    (message,) = _mails_to(smtp, "cat@example.com", 1)
    assert message["Subject"] == "bob requested changes on !1: Birds"
    _assert_links_to(message, team)
    settle()
    assert smtp.to("bob@example.com") == []


def test_approved_through_the_review_route(app, smtp, team, opened):
    mr = MR_PATH.format(slug=team)
    response = opened["bob"].submit(
        f"{mr}/reviews", {"verdict": "approve", "body": "Lovely."}, page=mr
    )
    assert response.status_code == 302
    (message,) = _mails_to(smtp, "cat@example.com", 1)
    assert message["Subject"] == "bob approved !1: Birds"
    assert "Lovely." in message.get_content()
    _assert_links_to(message, team)


def test_mentioned_through_a_comment_reaches_only_readers(app, smtp, team, opened, accounts):
    accounts.create("eve")  # exists, but may not read the document
    mr = MR_PATH.format(slug=team)
    response = opened["bob"].submit(
        f"{mr}/threads", {"body": "@dan @eve @bob does this read well?"}, page=mr
    )
    assert response.status_code == 302
    (message,) = _mails_to(smtp, "dan@example.com", 1)
    assert message["Subject"] == "bob mentioned you on !1: Birds"
    assert "does this read well?" in message.get_content()
    _assert_links_to(message, team, "#thread-")
    settle()
    assert [r for r, _ in smtp.messages] == [["dan@example.com"]]


def test_merged_through_the_merge_route(app, smtp, team, opened):
    mr = MR_PATH.format(slug=team)
    assert opened["cat"].submit(f"{mr}/reviewers", {"username": "bob"}, page=mr).status_code == 302
    assert opened["bob"].submit(f"{mr}/reviews", {"verdict": "approve"}, page=mr).status_code == 302
    _mails_to(smtp, "cat@example.com", 1)
    response = opened["ann"].submit(f"{mr}/merge", {"style": "merge"}, page=mr)
    assert response.status_code == 302
    with app.app_context():
        from app.mergerequests.services import get_merge_request

        assert get_merge_request(_doc(team), 1).state == "merged"
    for address, count in (("cat@example.com", 2), ("bob@example.com", 2)):
        message = _mails_to(smtp, address, count)[-1]
        assert message["Subject"] == "ann merged !1: Birds"
        _assert_links_to(message, team)
    settle()
    assert smtp.to("ann@example.com") == []  # the one who merged

    # The same events are in cat's list; opening the newest goes to the request.
    cat = opened["cat"]
    listing = cat.get("/notifications").get_data(as_text=True)
    assert listing.count("notification-unread") == 2
    newest = re.search(r'data-notification="(\d+)"', listing).group(1)
    assert cat.get(f"/notifications/{newest}").headers["Location"] == mr
    assert _badge(cat) == 1


def test_the_badge_costs_one_indexed_count_per_page_and_none_when_signed_out(
    app, team, client, accounts
):
    from sqlalchemy import event, text

    executed: list[tuple[str, object]] = []  # one append per statement: other threads run too

    def record(conn, cursor, statement, params, *args) -> None:  # noqa: ANN001
        executed.append((statement, params))

    engine = app.extensions["quire.db"].engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        client.get("/documents")
        assert not [s for s, _ in executed if "notifications" in s]
        accounts.login(client, "bob")
        executed.clear()
        client.get("/documents")
        touching = [(s, p) for s, p in executed if "notifications" in s]
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(touching) == 1 and "count(" in touching[0][0].lower()

    # ... and that COUNT is answered from the (user_id, read_at) index.
    count, params = touching[0]
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SET enable_seqscan = off"))  # the table is tiny here
            plan = conn.exec_driver_sql("EXPLAIN " + count, params)
        else:
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + count, params)
        plan_text = " ".join(str(column) for row in plan for column in row)
        conn.rollback()
    assert "ix_notifications_user_id_read_at" in plan_text, plan_text


def test_mentioned_in_an_annotation_through_its_route(app, smtp, team, client, accounts):
    """Annotations notify after their own commit: the rows must still be stored."""
    from app.documents.services import repo

    accounts.create("eve")
    with app.app_context():
        doc = _doc(team)
        set_member(_user("ann"), doc, "dan", "viewer")
        head = repo(doc).head("main")
    accounts.login(client, "bob")
    response = client.submit(
        f"/d/{team}/commit/{head}/annotations",
        {"body": "@dan @eve is this the right date?"},
        page=f"/d/{team}/commit/{head}",
    )
    assert response.status_code == 302
    (message,) = _mails_to(smtp, "dan@example.com", 1)
    assert "bob mentioned you" in message["Subject"]
    assert f"/d/{team}/commit/{head}" in message.get_content()
    settle()
    assert [r for r, _ in smtp.messages] == [["dan@example.com"]]
    with app.app_context():
        assert unread_count(_user("dan")) == 1
