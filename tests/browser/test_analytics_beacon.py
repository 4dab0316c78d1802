"""The page-view script in a real browser against a real gunicorn + gevent server.

Chromium signs in and moves between pages; each page it leaves sends one
``page_view`` beacon (path, title, seconds on page) that lands in the visit. A
browser whose ``navigator.doNotTrack`` is on sends nothing, and headless Chromium's
own user agent is a bot, so its visits are not stored at all.
"""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.live.conftest import PASSWORD, Server, server  # noqa: F401 - the server fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]

require_browser()

from playwright.sync_api import BrowserContext, Page, sync_playwright  # noqa: E402

#: What a desktop Chrome (not headless) sends; Chromium's headless one names itself a bot.
DESKTOP_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def _rows(srv: Server, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(srv.var_dir / "quire.db") as conn:
        return conn.execute(sql, args).fetchall()


def _page_views(srv: Server, user_id: int, count: int, timeout: float = 30.0) -> list[tuple]:
    """The user's page views once ``count`` are there (beacons are async, the writer batches)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = _rows(
            srv,
            "SELECT e.properties, e.visit_id, v.user_id FROM analytics_events e "
            "LEFT JOIN analytics_visits v ON v.id = e.visit_id "
            "WHERE e.name = 'page_view' AND e.user_id = ? ORDER BY e.id",
            user_id,
        )
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def _beacons_log(srv: Server) -> str:
    try:
        lines = (srv.var_dir / "access.log").read_text(errors="replace").splitlines()
    except OSError:
        return "(no access log)"
    messages = [json.loads(line).get("message", "") for line in lines if line.startswith("{")]
    return "\n".join(m for m in messages if "/static/" not in m)[-4000:]


def _sign_in(context: BrowserContext, srv: Server, username: str) -> Page:
    page = context.new_page()
    page.goto(srv.base_url + "/login")
    page.fill("#login", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(srv.base_url + "/")
    return page


def test_page_views_and_time_on_page_reach_the_visit(server: Server) -> None:  # noqa: F811
    server.user("ada")
    server.user("dora")
    ada_id, dora_id = (
        _rows(server, "SELECT id FROM users WHERE username = ?", name)[0][0]
        for name in ("ada", "dora")
    )
    with sync_playwright() as playwright:
        # Headless Chromium as it is: a bot, nothing stored, no script.
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(server.base_url + "/")
            assert "HeadlessChrome" in page.evaluate("navigator.userAgent")
            assert page.locator("script[src$='js/analytics.js']").count() == 0
        finally:
            browser.close()
        # As a desktop Chrome: browser-wide, since Chromium sends a beacon from a page
        # being left with the browser's own user agent, not a per-page override.
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, f"--user-agent={DESKTOP_CHROME}"]
        )
        try:
            # Do Not Track in the browser only (no header): the script stays silent.
            context = browser.new_context()
            context.add_init_script("Object.defineProperty(navigator, 'doNotTrack', {value: '1'})")
            page = _sign_in(context, server, "dora")
            page.goto(server.base_url + "/documents")
            page.goto(server.base_url + "/settings/privacy")
            context.close()

            context = browser.new_context()
            page = _sign_in(context, server, "ada")
            assert page.locator("script[src$='js/analytics.js']").count() == 1
            page.goto(server.base_url + "/documents")
            page.wait_for_timeout(300)  # some time on the page
            page.goto(server.base_url + "/settings/privacy")  # leaving sends the beacon
            page.goto(server.base_url + "/")
            context.close()
        finally:
            browser.close()

    views = _page_views(server, ada_id, 4)
    by_path = {json.loads(props)["path"]: json.loads(props) for props, _, _ in views}
    # Each page left sends its view: the login page (already signed in by then), home,
    # documents, privacy (the last home page may or may not send as the browser closes).
    assert {"/login", "/", "/documents", "/settings/privacy"} <= set(by_path), _beacons_log(server)
    documents = by_path["/documents"]
    assert documents["title"].startswith("Documents") and documents["seconds_on_page"] > 0
    assert {visit for _, visit, _ in views} != {None} and {user for *_, user in views} == {ada_id}
    assert _page_views(server, dora_id, 1, timeout=0) == []
    user_agents = [ua for (ua,) in _rows(server, "SELECT user_agent FROM analytics_visits")]
    assert user_agents and all("HeadlessChrome" not in (ua or "") for ua in user_agents)
