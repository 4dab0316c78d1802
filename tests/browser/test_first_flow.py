"""The first flow in a real browser against the real server that ``scripts/run`` starts.

Chromium (Debian's, at /usr/bin/chromium) signs up, creates a document, edits it
twice, compares the two versions, restores the first, and the repository's own
``git log`` is checked afterwards. The server is ``scripts/run`` itself, so this
also proves that a clean clone serves the app.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS, require_browser

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 120  # scripts/run may have to install the requirements first

USERNAME = "ada"
EMAIL = "ada@example.com"
PASSWORD = "correct horse battery"
TITLE = "Meeting notes"
SLUG = "meeting-notes"

FIRST_TEXT = (
    "# Meeting notes\n"
    "\n"
    "We agreed to ship the draft on Friday after the review.\n"
    "\n"
    "Action items are listed below.\n"
)
FIRST_MESSAGE = "First draft of the notes"
SECOND_TEXT = FIRST_TEXT.replace("on Friday", "on Monday")
SECOND_MESSAGE = "Move the launch to Monday"

UNLABELLED_FIELDS_JS = """() => {
  const bad = [];
  for (const el of document.querySelectorAll('input, textarea, select')) {
    if (el.type === 'hidden') continue;
    const byLabel = Array.from(el.labels || []).some((l) => l.textContent.trim() !== '');
    const byAria = (el.getAttribute('aria-label') || '').trim() !== ''
      || (el.getAttribute('aria-labelledby') || '').trim() !== '';
    if (!byLabel && !byAria) bad.push(el.outerHTML);
  }
  return bad;
}"""

require_browser()

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

# --- the server, started by scripts/run ------------------------------------------


@dataclass(frozen=True)
class Server:
    base_url: str
    var_dir: Path
    log: Path

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate scripts/run's whole process group (gunicorn master and workers)."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    var_dir = tmp_path_factory.mktemp("quire-var")
    log = var_dir / "server.log"
    port = _free_port()
    env = dict(os.environ, HOST="127.0.0.1", PORT=str(port), QUIRE_VAR_DIR=str(var_dir))
    # Whatever the test session runs under must not leak into the server's settings.
    for name in ("DATABASE_URL", "REPOS_ROOT", "REDIS_URL", "QUIRE_ENV"):
        env.pop(name, None)
    base_url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(ROOT / "scripts" / "run")],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    srv = Server(base_url, var_dir, log)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        listening = f"Listening at: {base_url}"
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"scripts/run exited with {proc.returncode} before serving:\n{srv.log_tail()}"
                )
            # The log line proves that it is our gunicorn answering on this port.
            if listening in log.read_text(errors="replace") and _up(f"{base_url}/up"):
                break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"scripts/run did not answer GET /up within {STARTUP_TIMEOUT}s:\n"
                    + srv.log_tail()
                )
            time.sleep(0.25)
        yield srv
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


# --- helpers -----------------------------------------------------------------------


def ends_with(tail: str) -> re.Pattern[str]:
    """A URL pattern for ``expect(page).to_have_url`` (globs resolve against base_url)."""
    return re.compile(re.escape(tail) + r"$")


def assert_accessible_form(page: Page) -> None:
    """Every field has a label and the page has exactly one main landmark."""
    unlabelled = page.evaluate(UNLABELLED_FIELDS_JS)
    assert unlabelled == [], f"fields without a label on {page.url}: {unlabelled}"
    mains = page.locator("main, [role=main]").count()
    assert mains == 1, f"{page.url} has {mains} main landmarks"


def edit_document(page: Page, text: str, message: str) -> None:
    page.get_by_role("link", name="Edit without live sync", exact=True).click()
    expect(page).to_have_url(ends_with(f"/d/{SLUG}/edit/main/document.md"))
    assert_accessible_form(page)
    page.get_by_label("Editing").fill(text)
    page.get_by_label("Describe your change").fill(message)
    page.get_by_role("button", name="Save version").click()
    expect(page.locator(".flash-success")).to_have_text("Saved.")


def open_history(page: Page) -> None:
    page.get_by_role("navigation", name="Document").get_by_role("link", name="History").click()
    expect(page).to_have_url(ends_with(f"/d/{SLUG}/history"))


def git(*args: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run(
        ["git", *map(str, args)], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"git {' '.join(map(str, args))}: {result.stderr}"
    return result.stdout


# --- the test ------------------------------------------------------------------------


def test_first_flow(server: Server, browser: Browser, tmp_path: Path) -> None:
    context = browser.new_context(base_url=server.base_url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        _first_flow(server, browser, context, page, tmp_path)
    except BaseException:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        print(f"page at failure: {page.url} (screenshot in {tmp_path})")
        print(f"server log ({server.log}):\n{server.log_tail()}")
        raise
    finally:
        context.close()


def _first_flow(server: Server, browser: Browser, context, page: Page, tmp_path: Path) -> None:
    # Sign up.
    page.goto("/signup")
    assert_accessible_form(page)
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator(".flash-success")).to_contain_text(f"Welcome to Quire, {USERNAME}")

    # Create the document.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="New document").click()
    expect(page).to_have_url(ends_with("/new"))
    assert_accessible_form(page)
    page.get_by_label("Title").fill(TITLE)
    page.get_by_role("button", name="Create document").click()
    expect(page).to_have_url(ends_with(f"/d/{SLUG}"))
    expect(page.locator(".doc-title h1")).to_have_text(TITLE)

    # Two edits: a rewrite, then one word changed in one sentence.
    edit_document(page, FIRST_TEXT, FIRST_MESSAGE)
    expect(page.locator(".markdown-body")).to_contain_text("ship the draft on Friday")
    edit_document(page, SECOND_TEXT, SECOND_MESSAGE)
    expect(page.locator(".markdown-body")).to_contain_text("ship the draft on Monday")

    # History, newest first; pick the two edits explicitly and compare them.
    open_history(page)
    items = page.locator("li.history-item")
    expect(items.locator(".history-summary")).to_have_text(
        [SECOND_MESSAGE, FIRST_MESSAGE, "Create document"]
    )
    assert_accessible_form(page)
    first_item = items.filter(has_text=FIRST_MESSAGE)
    second_item = items.filter(has_text=SECOND_MESSAGE)
    first_oid = first_item.locator("input[name=from]").get_attribute("value")
    second_oid = second_item.locator("input[name=to]").get_attribute("value")
    first_item.get_by_label("Compare from").check()
    second_item.get_by_label("Compare to").check()
    page.get_by_role("button", name="Compare selected versions").click()
    expect(page).to_have_url(re.compile(rf"/d/{SLUG}/compare\?"))
    query = parse_qs(urlsplit(page.url).query)
    assert (query["from"], query["to"]) == ([first_oid], [second_oid])
    assert_accessible_form(page)

    # Inline: only the changed word is highlighted, on both sides of the line.
    expect(page.locator("table.diff-inline ins.word-ins")).to_have_text(["Monday"])
    expect(page.locator("table.diff-inline del.word-del")).to_have_text(["Friday"])
    expect(page.locator("ins.word-ins")).to_be_visible()
    expect(page.locator("del.word-del")).to_be_visible()

    diff_tabs = page.get_by_role("navigation", name="Diff view")
    diff_tabs.get_by_role("link", name="Side by side").click()
    expect(page).to_have_url(ends_with("view=split"))
    expect(page.locator("table.diff-split ins.word-ins")).to_have_text(["Monday"])
    expect(page.locator("table.diff-split del.word-del")).to_have_text(["Friday"])
    expect(page.locator("table.diff-split ins.word-ins")).to_be_visible()

    diff_tabs.get_by_role("link", name="Rendered").click()
    expect(page).to_have_url(ends_with("view=rendered"))
    expect(page.locator(".rendered-diff ins.diff-ins")).to_have_text(["Monday"])
    expect(page.locator(".rendered-diff del.diff-del")).to_have_text(["Friday"])
    expect(page.locator(".rendered-diff ins.diff-ins")).to_be_visible()

    # Restore the first edit from its commit page.
    open_history(page)
    page.get_by_role("link", name=FIRST_MESSAGE).click()
    expect(page).to_have_url(ends_with(f"/d/{SLUG}/commit/{first_oid}"))
    page.get_by_role("button", name="Restore this version").click()
    expect(page.locator(".flash-success")).to_have_text(
        f"Restored version {first_oid[:8]} as a new version."
    )
    page.get_by_role("navigation", name="Document").get_by_role("link", name="Document").click()
    expect(page).to_have_url(ends_with(f"/d/{SLUG}"))
    body = page.locator(".markdown-body")
    expect(body).to_contain_text("We agreed to ship the draft on Friday after the review.")
    expect(body).not_to_contain_text("Monday")

    # The document page on a phone and on a desktop.
    state = context.storage_state()
    for name, viewport, mobile in (
        ("phone", {"width": 390, "height": 844}, True),
        ("desktop", {"width": 1440, "height": 900}, False),
    ):
        shot_context = browser.new_context(
            base_url=server.base_url,
            viewport=viewport,
            is_mobile=mobile,
            has_touch=mobile,
            device_scale_factor=2 if mobile else 1,
            storage_state=state,
        )
        try:
            shot = shot_context.new_page()
            shot.goto(f"/d/{SLUG}")
            expect(shot.locator(".markdown-body")).to_contain_text("on Friday")
            shot.screenshot(path=str(tmp_path / f"document-{name}.png"), full_page=True)
            width = shot.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1], f"{name}: page is {width[0]}px wide in {width[1]}px"
        finally:
            shot_context.close()

    # The repository's own history has all of it, in order, by the signed-up user.
    repos = sorted(server.var_dir.glob("repos/*/*.git"))
    assert len(repos) == 1, f"expected one repository, found {repos}"
    log = git("--git-dir", repos[0], "log", "--format=%an|%ae|%s", "main").splitlines()
    restore_subject = f"Restore version {first_oid[:7]}"
    assert log == [
        f"{USERNAME}|{EMAIL}|{restore_subject}",
        f"{USERNAME}|{EMAIL}|{SECOND_MESSAGE}",
        f"{USERNAME}|{EMAIL}|{FIRST_MESSAGE}",
        f"{USERNAME}|{EMAIL}|Create document",
    ]
    clone = tmp_path / "clone"
    git("clone", "--quiet", repos[0], clone)
    assert (clone / "document.md").read_text() == FIRST_TEXT
    git("-C", clone, "fsck", "--strict")
