"""Analytics tracking on real requests: events per action, bots, masking, DNT, opt-out,
cookieless visits, the beacon, retention purge, export and delete, a failing writer."""

from __future__ import annotations

import gzip
import json
import re
import sqlite3
import time
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select, text, update

from app import db
from app.accounts.services import get_user_by_username
from app.analytics import privacy, tracking
from app.analytics.experiment_models import Assignment
from app.analytics.models import Event, Preference, Visit
from app.db import utcnow
from app.documents import services
from gitstore.protocol import encode_pkt

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
Z = "0" * 40


@pytest.fixture
def browser(client):
    """The test client dressed as a desktop Chrome at a public IPv4 address."""
    client.environ_base.update(HTTP_USER_AGENT=CHROME, REMOTE_ADDR="203.0.113.77")
    return client


def _rows(app: Flask, model, *where):
    tracking.flush()
    with app.app_context():
        session = db.session()
        rows = list(session.scalars(select(model).where(*where).order_by(model.id)))
        session.expunge_all()
        return rows


def _names(app: Flask, *where) -> list[str]:
    return [e.name for e in _rows(app, Event, *where)]


def _user_id(app: Flask, username: str) -> int:
    with app.app_context():
        return get_user_by_username(username).id


def _signup(client, username: str) -> None:
    form = {
        "username": username,
        "email": f"{username}@example.com",
        "password": "correct horse battery",
    }
    response = client.submit("/signup", form, page="/signup")
    assert response.status_code == 302, response.get_data(as_text=True)


def _create(client, title: str) -> str:
    response = client.submit("/new", {"title": title, "visibility": "private"}, page="/new")
    assert response.status_code == 302
    return response.headers["Location"].rsplit("/", 1)[-1]


def _save(client, slug: str, content: str) -> None:
    page = f"/d/{slug}/edit/main/document.md"
    html = client.get(page).get_data(as_text=True)
    parent = re.search(r'name="parent" value="([0-9a-f]{40})"', html).group(1)
    response = client.submit(page, {"content": content, "message": "", "parent": parent}, page=page)
    assert response.status_code == 302


def _cookies(response) -> dict[str, str]:
    return {
        header.split("=", 1)[0]: header
        for header in response.headers.getlist("Set-Cookie")
        if header.startswith("quire_")
    }


def test_each_server_side_action_is_an_event_in_the_visit(app: Flask, browser, accounts) -> None:
    landing = browser.get(
        "/?utm_source=newsletter&utm_campaign=launch",
        headers={"Referer": "https://news.example.org/post/1"},
    )
    assert landing.status_code == 200
    cookies = _cookies(landing)
    assert set(cookies) == {"quire_visit", "quire_visitor"}
    assert "Max-Age=14400" in cookies["quire_visit"] and "SameSite=Lax" in cookies["quire_visit"]

    _signup(browser, "ada")
    browser.submit("/logout", page="/documents")
    accounts.login(browser, "ada")
    slug = _create(browser, "Plans")
    assert browser.get(f"/d/{slug}").status_code == 200
    _save(browser, slug, "# Plans\n\nMore.\n")
    created = browser.submit("/settings/tokens", {"name": "laptop"}, page="/settings/tokens")
    assert created.status_code == 200
    token = re.search(r'id="new-token">([^<]+)<', created.get_data(as_text=True)).group(1)
    api = browser.put(
        f"/api/v1/documents/{slug}/files/notes.md",
        json={"content": "api\n", "parent": _head(app, slug)},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert api.status_code == 201, api.get_data(as_text=True)

    ada = _user_id(app, "ada")
    events = _rows(app, Event)
    assert [e.name for e in events] == [
        "signed_up",
        "logged_in",
        "document_created",
        "document_opened",
        "commit_made",
        "token_created",
        "commit_made",
    ]
    assert all(e.user_id == ada for e in events)
    assert [e.properties.get("source") for e in events if e.name == "commit_made"] == [
        "web",
        "api",
    ]
    document_id = events[2].properties["document_id"]
    assert events[3].properties == {"document_id": document_id}

    (visit,) = _rows(app, Visit)  # one browser, one visit (logging out does not end it)
    assert all(e.visit_id == visit.id for e in events[:-1])
    assert events[-1].visit_id is None  # the API call came from a script with a token
    assert visit.user_id == ada
    assert visit.ip == "203.0.113.0"  # masked before storage
    assert (visit.browser, visit.os, visit.device_type) == ("Chrome", "Linux", "desktop")
    assert visit.landing_page == "/?utm_source=newsletter&utm_campaign=launch"
    assert (visit.utm_source, visit.utm_campaign, visit.utm_medium) == (
        "newsletter",
        "launch",
        None,
    )
    assert (visit.referrer, visit.referring_domain) == (
        "https://news.example.org/post/1",
        "news.example.org",
    )
    assert visit.last_seen_at >= visit.started_at


def _head(app: Flask, slug: str) -> str:
    with app.app_context():
        return services.repo(services.get_document(slug)).head("main")


def test_ipv6_is_cut_to_48_bits_and_devices_are_named(app: Flask, client) -> None:
    client.environ_base.update(HTTP_USER_AGENT=IPHONE, REMOTE_ADDR="2001:db8:abcd:12:3456::1")
    assert client.get("/").status_code == 200
    (visit,) = _rows(app, Visit)
    assert visit.ip == "2001:db8:abcd::"
    assert (visit.browser, visit.os, visit.device_type) == ("Mobile Safari", "iOS", "mobile")
    assert privacy.mask_ip("::ffff:198.51.100.9") == "198.51.100.0"
    assert privacy.mask_ip("not an address") is None


def test_unmasked_only_when_configured(app: Flask, browser) -> None:
    app.config["ANALYTICS_MASK_IP"] = False
    browser.get("/")
    assert [v.ip for v in _rows(app, Visit)] == ["203.0.113.77"]


def test_git_clone_and_push_are_events(app: Flask, client, accounts) -> None:
    accounts.create("olga")
    with app.app_context():
        slug = services.create_document(get_user_by_username("olga"), "Rules").slug
    token = accounts.token("olga")
    auth = {"Authorization": f"Bearer {token}", "User-Agent": "git/2.47.3"}
    head = _head(app, slug)
    want = encode_pkt(f"want {head} ofs-delta\n") + b"0000" + encode_pkt("done\n")
    clone = client.post(
        f"/{slug}.git/git-upload-pack",
        data=want,
        headers={**auth, "Content-Type": "application/x-git-upload-pack-request"},
    )
    assert clone.status_code == 200 and b"PACK" in clone.get_data()
    commands = encode_pkt(f"{Z} {head} refs/heads/copy\0report-status\n") + b"0000"
    pack = tracking_empty_pack()
    push = client.post(
        f"/{slug}.git/git-receive-pack",
        data=gzip.compress(commands + pack),
        headers={
            **auth,
            "Content-Type": "application/x-git-receive-pack-request",
            "Content-Encoding": "gzip",
        },
    )
    assert push.status_code == 200 and b"ok refs/heads/copy" in push.get_data()

    olga = _user_id(app, "olga")
    events = _rows(app, Event)
    assert [(e.name, e.user_id) for e in events] == [
        ("document_created", olga),  # from a service call outside any request: no visit
        ("git_clone", olga),
        ("commit_made", olga),
        ("git_push", olga),
    ]
    assert events[2].properties["source"] == "push"
    assert events[3].properties["refs"] == 1
    assert _rows(app, Visit) == []  # Git clients make events, never page visits


def tracking_empty_pack() -> bytes:
    import subprocess

    return subprocess.run(
        ["git", "pack-objects", "--stdout"], input=b"", capture_output=True, check=True
    ).stdout


def test_bots_are_not_recorded(app: Flask, client, accounts) -> None:
    accounts.create("ada")
    client.environ_base.update(HTTP_USER_AGENT=GOOGLEBOT)
    for page in ("/", "/login", "/signup"):
        response = client.get(page)
        assert response.status_code == 200 and _cookies(response) == {}
        assert "js/analytics.js" not in response.get_data(as_text=True)
    accounts.login(client, "ada")
    client.get("/documents")
    assert _rows(app, Visit) == [] and _rows(app, Event) == []


@pytest.mark.parametrize("header", ["DNT", "Sec-GPC"])
def test_do_not_track_and_gpc_store_nothing(app: Flask, browser, header: str) -> None:
    browser.environ_base["HTTP_" + header.upper().replace("-", "_")] = "1"
    response = browser.get("/")
    assert _cookies(response) == {}
    assert "js/analytics.js" not in response.get_data(as_text=True)
    _signup(browser, "ada")
    _create(browser, "Secret plans")
    beacon = browser.post(
        "/a/events",
        data=json.dumps({"name": "page_view", "properties": {"path": "/"}}),
        headers={"Origin": "http://localhost"},
    )
    assert beacon.status_code == 204
    assert _rows(app, Visit) == [] and _rows(app, Event) == []


def test_opt_out_stops_recording_and_opt_in_resumes(app: Flask, browser) -> None:
    _signup(browser, "ada")
    ada = _user_id(app, "ada")
    assert _names(app) == ["signed_up"]
    page = browser.get("/settings/privacy")
    assert page.status_code == 200 and "Stop recording my usage" in page.get_data(as_text=True)

    browser.submit("/settings/privacy", {"action": "opt_out"})
    before = {v.id: v.last_seen_at for v in _rows(app, Visit)}
    home = browser.get("/")
    assert "js/analytics.js" not in home.get_data(as_text=True)
    slug = _create(browser, "Private thoughts")
    browser.get(f"/d/{slug}")
    assert _names(app) == ["signed_up"]
    assert {v.id: v.last_seen_at for v in _rows(app, Visit)} == before  # not even extended
    with app.app_context():
        assert db.session().get(Preference, ada).opted_out is True

    browser.submit("/settings/privacy", {"action": "opt_in"})
    browser.get(f"/d/{slug}")
    assert _names(app) == ["signed_up", "document_opened"]


def test_opt_out_holds_in_a_process_that_has_not_heard_of_it(app: Flask, browser) -> None:
    """The writer checks the table, so a worker whose cache is stale stores nothing."""
    _signup(browser, "ada")
    ada = _user_id(app, "ada")
    assert _names(app) == ["signed_up"]
    with app.app_context():
        privacy.set_opted_out(db.session(), ada, True)  # as another worker would
    assert tracking.get_tracker(app).opted_out.get(ada) is False
    _create(browser, "Elsewhere")
    assert _names(app) == ["signed_up"]


def test_cookieless_mode_sets_no_cookie_and_still_counts(app: Flask, browser) -> None:
    app.config["ANALYTICS_COOKIELESS"] = True
    for page in ("/", "/login", "/signup"):
        response = browser.get(page)
        assert response.status_code == 200
        assert _cookies(response) == {}
    _signup(browser, "ada")
    (visit,) = _rows(app, Visit)
    assert re.fullmatch(r"[0-9a-f]{32}", visit.visitor_token)
    assert visit.ip == "203.0.113.0" and visit.user_id == _user_id(app, "ada")
    (event,) = _rows(app, Event)
    assert (event.name, event.visit_id, event.visitor_token) == (
        "signed_up",
        visit.id,
        visit.visitor_token,
    )
    # Another browser on the same network is another visitor.
    other = app.test_client()
    other.environ_base.update(HTTP_USER_AGENT=IPHONE, REMOTE_ADDR="203.0.113.12")
    other.get("/")
    assert len({v.visitor_token for v in _rows(app, Visit)}) == 2
    # Four idle hours end the visit: the next request starts a new one.
    with app.app_context():
        session = db.session()
        session.execute(
            update(Visit)
            .where(Visit.id == visit.id)
            .values(last_seen_at=utcnow() - timedelta(hours=5))
        )
        session.commit()
    browser.get("/")
    visits = _rows(app, Visit, Visit.visitor_token == visit.visitor_token)
    assert len(visits) == 2 and visits[1].user_id == _user_id(app, "ada")


def test_a_new_visit_starts_when_the_visit_cookie_is_gone(app: Flask, browser) -> None:
    browser.get("/")
    visitor = browser.get_cookie("quire_visitor").value
    browser.delete_cookie("quire_visit")  # what the browser does after four idle hours
    browser.get("/")
    visits = _rows(app, Visit)
    assert len(visits) == 2 and {v.visitor_token for v in visits} == {visitor}


def test_beacon_records_page_views_from_our_own_pages_only(app: Flask, browser) -> None:
    home = browser.get("/").get_data(as_text=True)
    assert 'src="/static/js/analytics.js" data-endpoint="/a/events"' in home
    view = {
        "name": "page_view",
        "properties": {"path": "/documents?q=x", "title": "Documents", "seconds_on_page": 12.34},
    }
    origin = {"Origin": "http://localhost"}
    sent = browser.post("/a/events", data=json.dumps(view), headers=origin)
    assert sent.status_code == 204
    (event,) = _rows(app, Event)
    assert event.name == "page_view" and event.visit_id is not None
    assert event.properties == {
        "path": "/documents?q=x",
        "title": "Documents",
        "seconds_on_page": 12.3,
    }

    def status(body, headers=origin) -> int:
        return browser.post("/a/events", data=body, headers=headers).status_code

    assert status(json.dumps(view), {"Origin": "https://evil.example"}) == 403
    assert status(json.dumps(view), {}) == 403
    assert status(json.dumps(view), {"Referer": "http://localhost/documents"}) == 204
    assert status("x" * 9000) == 413
    assert status("{not json") == 400
    assert status(json.dumps({"name": "signed_up", "properties": {"path": "/"}})) == 400
    bad_seconds = {**view, "properties": {**view["properties"], "seconds_on_page": -1}}
    assert status(json.dumps(bad_seconds)) == 400
    assert status(json.dumps([view] * 21)) == 400
    assert _names(app) == ["page_view", "page_view"]


def test_purge_deletes_only_what_is_older_than_the_retention(app: Flask) -> None:
    now = utcnow()
    with app.app_context():
        session = db.session()
        old = Visit(
            visit_token="o" * 32, visitor_token="v" * 32, started_at=now - timedelta(days=40)
        )
        new = Visit(
            visit_token="n" * 32, visitor_token="v" * 32, started_at=now - timedelta(days=2)
        )
        session.add_all([old, new])
        session.flush()
        session.add_all(
            [
                Event(visit_id=old.id, name="page_view", properties={}, time=old.started_at),
                # A visit that lasted past the cutoff keeps its later event.
                Event(
                    visit_id=old.id, name="page_view", properties={}, time=now - timedelta(days=29)
                ),
                Event(visit_id=new.id, name="page_view", properties={}, time=new.started_at),
            ]
        )
        session.commit()
    result = app.test_cli_runner().invoke(args=["analytics", "purge", "--days", "30"])
    assert result.exit_code == 0, result.output
    assert "deleted 1 visits and 1 events older than 30 days" in result.output
    assert [v.visit_token for v in _rows(app, Visit)] == ["n" * 32]
    kept = _rows(app, Event)
    assert len(kept) == 2 and kept[0].visit_id is None and kept[1].visit_id is not None
    with app.app_context(), pytest.raises(ValueError):
        privacy.purge(db.session(), 0)


def test_export_returns_the_users_rows_and_delete_removes_them(app: Flask, browser) -> None:
    other = app.test_client()
    other.environ_base.update(HTTP_USER_AGENT=IPHONE, REMOTE_ADDR="198.51.100.4")
    _signup(other, "bob")
    _signup(browser, "ada")
    _create(browser, "Mine")
    ada, bob = _user_id(app, "ada"), _user_id(app, "bob")
    with app.app_context():  # an experiment assignment is analytics data about ada too
        db.session().add(Assignment(experiment="cta", variant="b", user_id=ada))
        db.session().commit()
    exported = browser.get("/settings/privacy/export")
    assert exported.status_code == 200 and exported.mimetype == "application/json"
    assert "attachment" in exported.headers["Content-Disposition"]
    data = exported.get_json()
    assert data["user_id"] == ada
    assert [(a["experiment"], a["variant"]) for a in data["experiments"]] == [("cta", "b")]
    assert [e["name"] for e in data["events"]] == ["signed_up", "document_created"]
    assert len(data["visits"]) == 1 and data["visits"][0]["ip"] == "203.0.113.0"

    cli = app.test_cli_runner().invoke(args=["analytics", "export-user", "bob"])
    assert cli.exit_code == 0 and [e["name"] for e in json.loads(cli.output)["events"]] == [
        "signed_up"
    ]

    deleted = browser.submit("/settings/privacy", {"action": "delete"}, follow_redirects=True)
    assert "Deleted 1 visits and 2 events." in deleted.get_data(as_text=True)
    remaining = _rows(app, Event)
    assert all(e.user_id != ada for e in remaining if e.user_id is not None)
    assert [e.user_id for e in remaining if e.name == "signed_up"] == [bob]
    assert [v.user_id for v in _rows(app, Visit, Visit.user_id.is_not(None))] != []
    assert _rows(app, Assignment, Assignment.user_id == ada) == []

    cli = app.test_cli_runner().invoke(args=["analytics", "delete-user", "bob", "--yes"])
    assert cli.exit_code == 0 and "deleted 1 visits and 1 events of bob" in cli.output
    assert _rows(app, Event, Event.user_id == bob) == []
    assert _rows(app, Visit, Visit.user_id == bob) == []


def test_privacy_page_needs_a_login(client) -> None:
    assert client.get("/settings/privacy").status_code == 302
    assert client.get("/settings/privacy/export").status_code == 302


def test_a_failing_writer_never_fails_the_request(app: Flask, browser) -> None:
    tracker = tracking.get_tracker(app)
    engine = app.extensions["quire.db"].engine
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE analytics_events RENAME TO analytics_events_away"))
    try:
        failed = tracker.failed
        _signup(browser, "ada")
        slug = _create(browser, "Still works")
        assert browser.get(f"/d/{slug}").status_code == 200
        tracking.flush()
        assert tracker.failed > failed
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE analytics_events_away RENAME TO analytics_events"))
    browser.get(f"/d/{slug}")
    assert _names(app) == ["document_opened"]  # the writer recovers with the table


def test_tracking_off_records_nothing(app: Flask, browser) -> None:
    app.config["ANALYTICS_ENABLED"] = False
    response = browser.get("/")
    assert _cookies(response) == {} and "js/analytics.js" not in response.get_data(as_text=True)
    _signup(browser, "ada")
    assert _rows(app, Visit) == [] and _rows(app, Event) == []


# --- under gunicorn + gevent: live sessions, live commits, the greenlet writer ----------

from tests.live.conftest import agents, node_client, server  # noqa: E402, F401 - fixtures


def _server_events(srv, names: set[str], timeout: float = 30.0) -> list[tuple]:
    """The server's events once all of ``names`` are there (the writer runs every second)."""
    deadline = time.monotonic() + timeout
    while True:
        with sqlite3.connect(srv.var_dir / "quire.db") as conn:
            rows = conn.execute(
                "SELECT name, user_id, properties, visit_id FROM analytics_events ORDER BY id"
            ).fetchall()
        if names <= {r[0] for r in rows} or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


@pytest.mark.slow
def test_live_sessions_and_live_commits_are_recorded_by_the_server(server, agents) -> None:  # noqa: F811
    ada = server.user("ada")
    ada_id = server.api("GET", "/user", ada)["id"]
    slug = server.api("POST", "/documents", ada, {"title": "Live", "visibility": "private"})["slug"]
    agent = agents(server, f"{slug}/main/document.md", ada, "ada")
    agent.synced()
    agent.do("insert", index=0, text="Typed live. ")
    agent.wait_for("Typed live.")
    agent.close()  # the last editor leaves: the room commits now

    rows = _server_events(
        server, {"document_created", "live_session_joined", "live_session_ended", "commit_made"}
    )
    by_name = {name: (user, json.loads(props)) for name, user, props, _ in rows}
    assert [r[0] for r in rows if r[0] != "commit_made"] == [
        "document_created",
        "live_session_joined",
        "live_session_ended",
    ]
    assert all(user == ada_id for user, _ in by_name.values())
    assert by_name["commit_made"][1]["source"] == "live"  # the author, found by email
    ended = by_name["live_session_ended"][1]
    assert (
        ended["seconds"] >= 0
        and ended["document_id"] == by_name["document_created"][1]["document_id"]
    )


def test_a_beacon_flood_is_cut_off(app: Flask, browser) -> None:
    from app.analytics.views import BEACON_RATE_LIMIT

    limit = int(BEACON_RATE_LIMIT.split()[0])
    view = json.dumps({"name": "page_view", "properties": {"path": "/"}})
    statuses = [
        browser.post("/a/events", data=view, headers={"Origin": "http://localhost"}).status_code
        for _ in range(limit + 1)
    ]
    assert statuses[:limit] == [204] * limit and statuses[-1] == 429
    assert len(_rows(app, Event)) == limit


def test_the_request_path_never_reads_or_writes_the_analytics_tables(app: Flask, browser) -> None:
    """A page, a sign-up, a beacon and an opt-out check: all recorded, none by the request."""
    import threading

    from sqlalchemy import event

    engine = app.extensions["quire.db"].engine
    request_thread = threading.get_ident()
    seen: list[str] = []

    def watch(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        if threading.get_ident() == request_thread and re.search(
            r"analytics_(visits|events|preferences)", statement
        ):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", watch)
    try:
        browser.get("/")
        _signup(browser, "ada")
        browser.post(
            "/a/events",
            data=json.dumps({"name": "page_view", "properties": {"path": "/"}}),
            headers={"Origin": "http://localhost"},
        )
        slug = _create(browser, "Quick")
        browser.get(f"/d/{slug}")
    finally:
        event.remove(engine, "before_cursor_execute", watch)
    assert seen == []
    names = _names(app)  # written by the flush, on this thread, after the requests
    assert names == ["signed_up", "page_view", "document_created", "document_opened"]
