"""Live editing in real Chromium pages (issue 4, acceptance 1 and "The editor").

Two signed-in people (two browser contexts) open one document's live page and
type; each sees the other's text and named cursor, and within 12 s a commit
names both. A viewer's page is read-only: what it types reaches neither the
others nor Git. A page that goes offline keeps typing, shows its unsent changes,
and its edits arrive when it is back online. Undo is per person.

The server is gunicorn as production runs it (``deploy/gunicorn.conf.py``), with
the editor bundle built by ``npm run build`` when it is missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.live.conftest import Server, _free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
FILE = "document.md"

require_browser()

from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright  # noqa: E402


def _build_bundle() -> None:
    """``scripts/setup`` builds it; a bare checkout builds it here."""
    if (ROOT / "static" / "dist" / "manifest.json").exists():
        return
    if shutil.which("npm") is None:
        pytest.fail("npm is needed to build the editor bundle")
    if not (ROOT / "node_modules").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=ROOT, check=True, timeout=600)
    subprocess.run(["npm", "run", "build"], cwd=ROOT, check=True, timeout=300)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    _build_bundle()
    var_dir = tmp_path_factory.mktemp("live-browser")
    port = _free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "QUIRE_VAR_DIR": str(var_dir),
        "DATABASE_URL": f"sqlite:///{var_dir / 'quire.db'}",
        "REPOS_ROOT": str(var_dir / "repos"),
        "SECRET_KEY": "live-browser-secret",
        "ACCESS_LOG": str(var_dir / "access.log"),
        "REDIS_URL": "",
        "LOGIN_RATE_LIMIT": "1000 per minute",
    }
    env.pop("QUIRE_ENV", None)
    srv = Server(var_dir, port, env)
    srv.flask("db", "upgrade")
    srv.start()
    yield srv
    if srv.proc is not None and srv.proc.poll() is None:
        srv.kill(signal.SIGTERM)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def doc(server: Server) -> dict[str, Any]:
    """ada owns a private document; bob edits it and vic views it (set on the settings page)."""
    tokens = {name: server.user(name) for name in ("ada", "bob", "vic")}
    slug = server.api("POST", "/documents", tokens["ada"], {"title": "Live notes"})["slug"]
    return {"slug": slug, "tokens": tokens, "live": f"/d/{slug}/live/main/{FILE}"}


class People:
    def __init__(self, server: Server, browser: Browser, tmp_path: Path) -> None:
        self.server, self.browser, self.tmp_path = server, browser, tmp_path
        self.contexts: list[BrowserContext] = []
        self.pages: dict[str, Page] = {}

    def sign_in(self, name: str, **options: Any) -> Page:
        context = self.browser.new_context(
            base_url=self.server.base_url,
            **({"viewport": {"width": 1280, "height": 900}} | options),
        )
        self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto("/login")
        page.get_by_label("Username or email").fill(name)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("navigation", name="Main")).to_contain_text(name)
        self.pages[name] = page
        return page

    def close(self, failed: bool) -> None:
        for name, page in self.pages.items():
            if failed:
                with contextlib.suppress(Exception):
                    page.screenshot(path=str(self.tmp_path / f"{name}.png"), full_page=True)
        for context in self.contexts:
            with contextlib.suppress(Exception):
                context.close()


@pytest.fixture
def people(server: Server, browser: Browser, tmp_path: Path) -> Iterator[People]:
    crowd = People(server, browser, tmp_path)
    ok = False
    try:
        yield crowd
        ok = True
    finally:
        crowd.close(failed=not ok)
        if not ok:
            print(f"screenshots in {tmp_path}\nserver log:\n{server.tail()}")


def editor(page: Page):  # noqa: ANN201
    return page.locator(".cm-content")


def type_at_end(page: Page, text: str) -> None:
    editor(page).click()
    page.keyboard.press("Control+End")
    page.keyboard.type(text)


def status(page: Page):  # noqa: ANN201
    return page.locator("[data-live-status]")


def git_text(server: Server, doc: dict[str, Any]) -> str:
    return server.api("GET", f"/documents/{doc['slug']}/files/{FILE}", doc["tokens"]["ada"])[
        "content"
    ]


def wait_for_commit(server: Server, doc: dict[str, Any], contains: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        commits = server.api("GET", f"/documents/{doc['slug']}/commits", doc["tokens"]["ada"])
        head = commits["commits"][0]
        if head["summary"].startswith("Live edit") and contains in git_text(server, doc):
            return head
        if time.monotonic() > deadline:
            pytest.fail(f"no live commit with {contains!r} within {timeout}s; head: {head}")
        time.sleep(0.25)


def test_two_people_edit_live_and_a_viewer_watches(server, doc, people) -> None:
    ada = people.sign_in("ada")
    # Members are added the way an owner does it: on the settings page.
    ada.goto(f"/d/{doc['slug']}/settings")
    for name, role in (("bob", "editor"), ("vic", "viewer")):
        ada.get_by_label("Username").fill(name)
        ada.get_by_label("Role").select_option(role)
        ada.get_by_role("button", name="Add or change").click()
        expect(ada.locator(".flash-success")).to_have_text("Member saved.")

    # ada goes through the document page's "Edit live"; bob opens the address.
    ada.goto(f"/d/{doc['slug']}")
    expect(ada.get_by_role("link", name="Edit without live sync")).to_be_visible()
    ada.get_by_role("link", name="Edit live").click()
    expect(ada).to_have_url(server.base_url + doc["live"])
    bob = people.sign_in("bob")
    bob.goto(doc["live"])
    for page in (ada, bob):
        expect(status(page)).to_have_text("Connected")
        expect(editor(page)).to_contain_text("# Live notes")
        expect(page.get_by_role("region", name="Preview")).to_be_visible()

    type_at_end(ada, "\nAda was here.")
    type_at_end(bob, "\nBob too.")
    typed_at = time.monotonic()
    for page, other in ((ada, "bob"), (bob, "ada")):
        expect(editor(page)).to_contain_text("Ada was here.")
        expect(editor(page)).to_contain_text("Bob too.")
        # The other's cursor, labelled with their name, and the list of who is here.
        expect(page.locator(".cm-ySelectionCaret")).to_have_count(1)
        expect(page.locator(".cm-ySelectionInfo")).to_have_text(other)
        expect(page.locator("[data-live-people]")).to_contain_text(other)
        expect(page.locator("[data-live-preview]")).to_contain_text("Bob too.")
    assert ada.locator("[data-live-people] li").count() == 2
    ada.screenshot(path=str(people.tmp_path / "live-desktop.png"), full_page=True)

    head = wait_for_commit(server, doc, "Bob too.", timeout=12 - (time.monotonic() - typed_at))
    names = {head["author"]["name"], *(c["name"] for c in head["co_authors"])}
    assert names == {"ada", "bob"}, head
    assert "Ada was here." in git_text(server, doc)

    # Undo is per person: ada's undo removes her words, not bob's.
    type_at_end(ada, " UNDO-ME")
    expect(editor(bob)).to_contain_text("UNDO-ME")
    ada.keyboard.press("Control+z")
    for page in (ada, bob):
        expect(editor(page)).not_to_contain_text("UNDO-ME")
        expect(editor(page)).to_contain_text("Bob too.")

    # A viewer watches read-only: sees changes and cursors; typing changes nothing.
    vic = people.sign_in("vic")
    vic.goto(f"/d/{doc['slug']}")
    vic.get_by_role("link", name="Watch live").click()
    expect(status(vic)).to_have_text("Connected")
    expect(editor(vic)).to_contain_text("Bob too.")
    expect(editor(vic)).to_have_attribute("aria-readonly", "true")
    type_at_end(bob, "\nBob again.")
    expect(editor(vic)).to_contain_text("Bob again.")
    expect(vic.locator(".cm-ySelectionInfo", has_text="bob")).to_have_count(1)
    type_at_end(vic, "VIEWER SPAM")
    expect(editor(vic)).not_to_contain_text("VIEWER")
    vic.evaluate("() => window.quireLive.ytext.insert(0, 'FORCED ')")  # bypass the UI
    time.sleep(1.5)
    for page in (ada, bob):
        expect(editor(page)).not_to_contain_text("FORCED")
        expect(editor(page)).to_contain_text("Bob again.")

    # Offline: bob keeps typing, sees his unsent changes; back online they arrive.
    bob.context.set_offline(True)
    expect(status(bob)).to_contain_text("Offline")
    type_at_end(bob, "\nWritten offline.")
    expect(status(bob)).to_contain_text("unsent change")
    time.sleep(1.0)
    expect(editor(ada)).not_to_contain_text("Written offline.")
    bob.context.set_offline(False)
    expect(editor(ada)).to_contain_text("Written offline.")
    expect(status(bob)).to_have_text("Connected")
    head = wait_for_commit(server, doc, "Written offline.", timeout=15)
    text = git_text(server, doc)
    assert text.count("Written offline.") == 1 and "Bob again." in text
    assert "VIEWER" not in text and "FORCED" not in text and "UNDO-ME" not in text

    # Role changes reach open pages: bob becomes a viewer, vic is removed.
    settings = ada.context.new_page()
    settings.goto(f"/d/{doc['slug']}/settings")
    settings.get_by_label("Username").fill("bob")
    settings.get_by_label("Role").select_option("viewer")
    settings.get_by_role("button", name="Add or change").click()
    expect(settings.locator(".flash-success")).to_have_text("Member saved.")
    settings.get_by_role("row", name="vic").get_by_role("button", name="Remove").click()
    expect(settings.locator(".flash-success")).to_have_text("Member removed.")
    expect(bob.locator("[data-live-notice]")).to_contain_text("Your role on this document changed")
    expect(editor(bob)).to_have_attribute("aria-readonly", "true")
    expect(status(vic)).to_have_text("You no longer have access to this document.")


def test_live_page_on_a_phone(server, doc, people) -> None:
    phone = people.sign_in(
        "ada", viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    phone.goto(doc["live"])
    expect(status(phone)).to_have_text("Connected")
    text_box = phone.get_by_role("region", name="Text").bounding_box()
    preview_box = phone.get_by_role("region", name="Preview").bounding_box()
    assert text_box and preview_box and preview_box["y"] >= text_box["y"] + text_box["height"]
    phone.screenshot(path=str(people.tmp_path / "live-phone.png"), full_page=True)
    width = phone.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"page is {width[0]}px wide in {width[1]}px"
