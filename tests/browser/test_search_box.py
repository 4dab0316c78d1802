"""The site-wide search box in a real browser: "/" focuses it, Enter shows the results.

Against a real gunicorn + gevent server, so the document's words reach the index the way
they do in production: through the background indexer, after the save returned.
"""

from __future__ import annotations

import time

import pytest

from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.live.conftest import PASSWORD, Server, server  # noqa: F401 - the server fixture

pytestmark = [pytest.mark.browser]

require_browser()

from playwright.sync_api import expect, sync_playwright  # noqa: E402


def test_slash_focuses_the_box_and_finds_a_document(server: Server) -> None:  # noqa: F811
    token = server.user("ada")
    created = server.api(
        "POST", "/documents", token, {"title": "Field notes", "visibility": "private"}
    )
    slug = created["slug"]
    head = server.api("GET", f"/documents/{slug}/branches", token)["branches"][0]["head"]
    server.api(
        "PUT",
        f"/documents/{slug}/files/document.md",
        token,
        {"content": "# Field notes\n\nThe heron waited by the weir.\n", "parent": head},
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(server.base_url + "/login")
            page.fill("#login", "ada")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(server.base_url + "/")
            box = page.get_by_role("searchbox", name="Search documents")

            # "/" while typing in another field types a slash; elsewhere it focuses the box.
            page.goto(server.base_url + "/new")
            title = page.locator("input[name=title]")
            title.click()
            page.keyboard.press("/")
            expect(title).to_have_value("/")
            expect(box).not_to_be_focused()
            page.locator("body").click(position={"x": 5, "y": 5})
            page.keyboard.press("/")
            expect(box).to_be_focused()

            deadline = time.monotonic() + 10  # the indexer runs after the save returned
            while True:
                page.keyboard.type("heron")
                page.keyboard.press("Enter")
                page.wait_for_url("**/search?q=heron")
                hits = page.locator("mark", has_text="heron")
                if hits.count() or time.monotonic() > deadline:
                    break
                page.keyboard.press("/")
            expect(hits.first).to_be_visible()
            expect(page.get_by_role("link", name="Field notes").first).to_be_visible()
        finally:
            browser.close()
