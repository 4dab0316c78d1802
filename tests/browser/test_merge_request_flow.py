"""Merge requests in real Chromium pages against gunicorn, with the real git CLI.

1. ada (owner) protects main (one approval, unresolved threads block), adds bob as a
   reviewer, creates a branch, edits it and opens a merge request; bob comments on a
   line of the diff and requests changes; ada pushes a fix with ``git push`` over HTTP
   with a token; bob resolves the thread and approves; ada merges. Two more requests
   are merged as a squash and as a fast-forward, and a fresh clone's
   ``git log --graph`` of main has the expected shape.
2. A real conflict (both sides change the same words) is resolved on the conflicts
   page: the result is a merge commit with two parents holding the chosen text.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.live.conftest import Server, _free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "correct horse battery"
FILE = "document.md"
PLAN = "# Launch plan\n\nWe ship on Friday.\n\nBudget: ten thousand.\n"

require_browser()

from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    var_dir = tmp_path_factory.mktemp("mr-browser")
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(_free_port()),
        "QUIRE_VAR_DIR": str(var_dir),
        "DATABASE_URL": f"sqlite:///{var_dir / 'quire.db'}",
        "REPOS_ROOT": str(var_dir / "repos"),
        "SECRET_KEY": "mr-browser-secret",
        "ACCESS_LOG": str(var_dir / "access.log"),
        "REDIS_URL": "",
        "LOGIN_RATE_LIMIT": "1000 per minute",
    }
    env.pop("QUIRE_ENV", None)
    srv = Server(var_dir, int(env["PORT"]), env)
    srv.flask("db", "upgrade")
    srv.start()
    yield srv
    if srv.proc is not None and srv.proc.poll() is None:
        srv.kill(signal.SIGTERM)
    for repo in sorted((var_dir / "repos").glob("*/*.git")):
        fsck = git("fsck", "--strict", "--no-progress", cwd=repo)
        assert "error" not in fsck.lower(), fsck


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def tokens(server: Server) -> dict[str, str]:
    return {name: server.user(name) for name in ("ada", "bob")}


class People:
    """Signed-in browser contexts, closed (with screenshots on failure) at the end."""

    def __init__(self, server: Server, browser: Browser, tmp_path: Path) -> None:
        self.server, self.browser, self.tmp_path = server, browser, tmp_path
        self.contexts: list[BrowserContext] = []
        self.pages: dict[str, Page] = {}

    def sign_in(self, name: str) -> Page:
        context = self.browser.new_context(
            base_url=self.server.base_url, viewport={"width": 1280, "height": 900}
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
                    print(f"{name} at failure: {page.url} (screenshot in {self.tmp_path})")
        for context in self.contexts:
            context.close()


@pytest.fixture
def people(server: Server, browser: Browser, tmp_path: Path) -> Iterator[People]:
    crowd = People(server, browser, tmp_path)
    failed = True
    try:
        yield crowd
        failed = False
    finally:
        crowd.close(failed)
        if failed:
            print(f"server log:\n{server.tail()}")


# --- helpers -----------------------------------------------------------------------


def git(*args: str | Path, cwd: Path | None = None) -> str:
    env = {
        "HOME": str(cwd or Path.cwd()),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "ada",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "ada",
        "GIT_COMMITTER_EMAIL": "ada@example.com",
        "LANG": "C",
    }
    result = subprocess.run(
        ["git", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"git {' '.join(map(str, args))}:\n{result.stderr}"
    return result.stdout + result.stderr


def clone_url(server: Server, slug: str, user: str, token: str) -> str:
    return f"http://{user}:{token}@127.0.0.1:{server.port}/{slug}.git"


def create_document(server: Server, token: str, title: str, text: str) -> str:
    slug = server.api("POST", "/documents", token, {"title": title})["slug"]
    head = server.api("GET", f"/documents/{slug}/branches", token)["branches"][0]["head"]
    server.api("PUT", f"/documents/{slug}/files/{FILE}", token, {"content": text, "parent": head})
    return slug


def edit_on_branch(page: Page, slug: str, branch: str, text: str, message: str) -> None:
    page.goto(f"/d/{slug}/edit/{branch}/{FILE}")
    page.get_by_label("Editing").fill(text)
    page.get_by_label("Describe your change").fill(message)
    page.get_by_role("button", name="Save version").click()
    expect(page.locator(".flash-success")).to_have_text("Saved.")


def create_branch(page: Page, slug: str, name: str) -> None:
    page.goto(f"/d/{slug}/branches")
    form = page.locator("form").filter(has=page.get_by_role("button", name="Create branch"))
    form.locator("[name=name]").fill(name)  # from: the default branch, preselected
    form.get_by_role("button", name="Create branch").click()
    expect(page.locator(".flash-success")).to_contain_text(name)


def open_merge_request(page: Page, slug: str, source: str, title: str, description: str) -> int:
    page.goto(f"/d/{slug}")
    page.get_by_role("navigation", name="Document").get_by_role(
        "link", name="Merge requests"
    ).click()
    page.get_by_role("link", name="New merge request").click()
    assert_labelled(page)
    page.get_by_label("Source branch").select_option(source)
    page.get_by_label("Target branch").select_option("main")
    page.get_by_label("Title").fill(title)
    page.get_by_label("Description (Markdown)").fill(description)
    page.get_by_role("button", name="Open merge request").click()
    expect(page.locator(".flash-success")).to_contain_text("opened")
    expect(page.locator(".mr-title-text")).to_have_text(title)
    return int(re.search(r"/merge-requests/(\d+)$", page.url).group(1))


UNLABELLED_FIELDS_JS = """() => Array.from(document.querySelectorAll('input, textarea, select'))
  .filter((el) => el.type !== 'hidden')
  .filter((el) => !Array.from(el.labels || []).some((l) => l.textContent.trim() !== '')
    && !(el.getAttribute('aria-label') || '').trim())
  .map((el) => el.outerHTML)"""


def assert_labelled(page: Page) -> None:
    """Every field of the page has a label (the forms work with a screen reader)."""
    assert page.evaluate(UNLABELLED_FIELDS_JS) == [], page.url


def mr_url(slug: str, number: int, tab: str = "") -> str:
    return f"/d/{slug}/merge-requests/{number}" + (f"/{tab}" if tab else "")


def reason(page: Page) -> str:
    return page.locator("#merge-box").get_attribute("data-mergeability") or ""


def approve(page: Page, slug: str, number: int) -> None:
    page.goto(mr_url(slug, number))
    page.get_by_role("button", name="Approve", exact=True).click()
    expect(page.locator("#review-panel [data-reviewer='bob'] .verdict")).to_have_text("approved")


def merge(page: Page, slug: str, number: int, style_label: str, *, delete: bool = False) -> str:
    page.goto(mr_url(slug, number))
    expect(page.locator("#merge-box")).to_have_attribute("data-mergeability", "mergeable")
    page.get_by_label(style_label).check()
    if delete:
        page.get_by_label(re.compile("Delete the source branch")).check()
    page.get_by_role("button", name="Merge", exact=True).click()
    expect(page.locator(".flash-success")).to_contain_text("Merged into main as")
    expect(page.locator("#merge-box h3")).to_have_text("Merged")
    return page.locator(".merge-commit").inner_text()


# --- 1: the whole review flow, three merge styles -----------------------------------------


def test_review_and_merge_in_three_styles(
    server: Server, tokens: dict[str, str], people: People, tmp_path: Path
) -> None:
    slug = create_document(server, tokens["ada"], "Launch plan", PLAN)
    ada = people.sign_in("ada")

    # ada adds bob as a reviewer and protects main: one approval, unresolved threads block.
    ada.goto(f"/d/{slug}/settings")
    ada.get_by_label("Username").fill("bob")
    ada.get_by_label("Role").select_option("reviewer")
    ada.get_by_role("button", name="Add or change").click()
    ada.get_by_role("link", name="Branch protection and merge settings").click()
    form = ada.locator("form.protection-new")
    form.get_by_label("Branch or pattern").fill("main")
    form.get_by_label("Required approvals").fill("1")
    form.get_by_label("Block merging while threads are unresolved").check()
    form.get_by_role("button", name="Add rule").click()
    expect(ada.locator(".flash-success")).to_have_text("Protection rule saved.")
    assert_labelled(ada)
    expect(ada.locator("details.protection-rule summary")).to_contain_text("1 approval")

    # A branch, an edit, a merge request.
    create_branch(ada, slug, "monday")
    edit_on_branch(ada, slug, "monday", PLAN.replace("Friday", "Monday"), "Move to Monday")
    first = open_merge_request(ada, slug, "monday", "Launch on Monday", "Friday is *too late*.")
    expect(ada.locator(".mr-description em")).to_have_text("too late")
    assert reason(ada) == "needs_approvals"

    # bob comments on the changed line and asks for changes.
    bob = people.sign_in("bob")
    bob.goto(mr_url(slug, first, "changes"))
    line = bob.locator('[data-path="document.md"][data-side="new"][data-line="3"]')
    expect(line).to_contain_text("We ship on Monday.")
    expect(line.locator("ins.word-ins")).to_have_text("Monday")
    line.get_by_role("button", name=re.compile(r"^Comment on new line 3 of document\.md")).click()
    bob.get_by_label("Comment on line 3 (new version) of document.md").fill(
        "Monday is a holiday; make it Tuesday."
    )
    bob.locator("button[data-action=submit-comment]").click()
    thread = bob.locator("section.review-thread").filter(has_text="make it Tuesday")
    expect(thread).to_be_visible()
    bob.goto(mr_url(slug, first))
    bob.get_by_label("Your review (optional, Markdown)").fill("See my comment.")
    bob.get_by_role("button", name="Request changes").click()
    expect(bob.locator("#review-panel [data-reviewer='bob'] .verdict")).to_have_text(
        "requested changes"
    )
    bob.goto(mr_url(slug, first, "changes") + "?view=split")
    expect(bob.locator("section.review-thread")).to_have_count(1)
    bob.screenshot(path=str(tmp_path / "changes-split.png"), full_page=True)
    ada.reload()
    ada.screenshot(path=str(tmp_path / "overview-blocked.png"), full_page=True)
    assert reason(ada) == "needs_approvals"
    expect(ada.locator(".merge-reason")).to_contain_text("asked for changes")
    expect(ada.get_by_role("button", name="Merge", exact=True)).to_be_disabled()
    assert_labelled(ada)

    # ada pushes the fix with git.
    work = tmp_path / "work"
    git("clone", "-q", clone_url(server, slug, "ada", tokens["ada"]), work, cwd=tmp_path)
    git("checkout", "-q", "monday", cwd=work)
    (work / FILE).write_text(PLAN.replace("Friday", "Tuesday"))
    git("commit", "-q", "-am", "Tuesday, not Monday", cwd=work)
    git("push", "-q", "origin", "monday", cwd=work)
    fixed = git("rev-parse", "HEAD", cwd=work).strip()
    bob.goto(mr_url(slug, first))
    expect(bob.locator(".mr-header")).to_have_attribute("data-head", fixed)
    expect(bob.locator(".timeline-pushed")).to_contain_text("pushed")

    # bob resolves the thread and approves; ada merges with a merge commit.
    bob.locator("section.review-thread").filter(has_text="make it Tuesday").get_by_role(
        "button", name="Resolve thread"
    ).click()
    expect(
        bob.locator("section.review-thread.is-resolved").filter(has_text="make it Tuesday")
    ).to_have_count(1)
    approve(bob, slug, first)
    main_before = server.api("GET", f"/documents/{slug}/branches", tokens["ada"])["branches"][0][
        "head"
    ]
    merged = merge(ada, slug, first, "Merge commit", delete=True)

    # Two more requests: squash (two commits become one), then fast-forward.
    create_branch(ada, slug, "budget")
    text = PLAN.replace("Friday", "Tuesday")
    edit_on_branch(ada, slug, "budget", text.replace("ten", "twelve"), "Budget up")
    edit_on_branch(ada, slug, "budget", text.replace("ten", "fifteen"), "Budget up again")
    second = open_merge_request(ada, slug, "budget", "Raise the budget", "Costs went up.")
    approve(bob, slug, second)
    squashed = merge(ada, slug, second, "Squash into one commit")

    create_branch(ada, slug, "appendix")
    final = text.replace("ten", "fifteen") + "\nSee the appendix.\n"
    edit_on_branch(ada, slug, "appendix", final, "Point to the appendix")
    third = open_merge_request(ada, slug, "appendix", "Mention the appendix", "")
    appendix_head = server.api("GET", f"/documents/{slug}/merge-requests/{third}", tokens["ada"])[
        "head"
    ]
    approve(bob, slug, third)
    fast = merge(ada, slug, third, "Fast-forward")
    ada.goto(f"/d/{slug}/merge-requests?state=merged")
    expect(ada.locator("li.mr-item")).to_have_count(3)
    ada.screenshot(path=str(tmp_path / "list.png"), full_page=True)
    ada.goto(mr_url(slug, first))
    ada.screenshot(path=str(tmp_path / "overview-merged.png"), full_page=True)
    phone = people.browser.new_context(
        base_url=server.base_url,
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        storage_state=ada.context.storage_state(),
    )
    people.contexts.append(phone)
    small = phone.new_page()
    for url in (mr_url(slug, first), mr_url(slug, second, "changes"), f"/d/{slug}/merge-requests"):
        small.goto(url)
        widths = small.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], f"{url} is {widths[0]}px wide on a {widths[1]}px phone"
    small.screenshot(path=str(tmp_path / "list-phone.png"), full_page=True)
    assert appendix_head.startswith(fast)

    # A fresh clone: ff on top of the squash on top of the merge commit.
    fresh = tmp_path / "fresh"
    git("clone", "-q", clone_url(server, slug, "bob", tokens["bob"]), fresh, cwd=tmp_path)
    graph = git("log", "--graph", "--oneline", "main", cwd=fresh)
    print(graph)
    rows = [
        line.split()
        for line in git("log", "--format=%H %P", "--first-parent", "main", cwd=fresh).splitlines()
    ]
    (ff_commit, ff_parent), (sq_commit, sq_parent) = rows[0], rows[1]
    merge_commit, *merge_parents = rows[2]
    assert ff_commit == appendix_head and ff_parent == sq_commit  # no merge commit for ff
    assert sq_commit.startswith(squashed) and sq_parent == merge_commit  # one parent
    assert merge_commit.startswith(merged) and merge_parents == [main_before, fixed]
    assert "Budget up" not in git("log", "--format=%s", "main", "-3", cwd=fresh)
    lines = graph.splitlines()
    assert re.match(rf"\* {fast[:7]}", lines[0]) and re.match(rf"\* {sq_commit[:7]}", lines[1])
    assert re.match(rf"\*\s+{merge_commit[:7]} Launch on Monday \(!1\)", lines[2])
    assert lines[3].startswith("|\\")
    assert (fresh / FILE).read_text() == final
    git("fsck", "--strict", cwd=fresh)
    branches = git("branch", "-r", cwd=fresh)
    assert "origin/monday" not in branches and "origin/budget" in branches


# --- 2: resolving a conflict in the browser ----------------------------------------------


def test_conflict_resolved_in_the_browser(
    server: Server, tokens: dict[str, str], people: People, tmp_path: Path
) -> None:
    token = tokens["ada"]
    slug = create_document(server, token, "Picnic", PLAN)
    ada = people.sign_in("ada")
    create_branch(ada, slug, "sunday")
    edit_on_branch(ada, slug, "sunday", PLAN.replace("Friday", "Sunday"), "Sunday")
    edit_on_branch(ada, slug, "main", PLAN.replace("Friday", "Saturday"), "Saturday")
    number = open_merge_request(ada, slug, "sunday", "Picnic on Sunday", "")
    assert reason(ada) == "conflicts"
    expect(ada.locator(".merge-reason")).to_contain_text("Conflicts in document.md")
    ada.get_by_role("link", name="Resolve conflicts").click()
    region = ada.locator("fieldset.conflict-region")
    expect(region).to_have_count(1)
    ours = region.locator(".conflict-ours pre").inner_text()
    theirs = region.locator(".conflict-theirs pre").inner_text()
    assert "Saturday" in ours and "Sunday" in theirs
    resolution = "Sunday, or Saturday if it rains."
    region.get_by_label("Write it myself:").check()
    region.get_by_label("Your text for conflict 1 in document.md").fill(resolution)
    target_head = server.api("GET", f"/documents/{slug}/branches", token)["branches"][0]["head"]
    source_head = server.api("GET", f"/documents/{slug}/merge-requests/{number}", token)["head"]
    ada.screenshot(path=str(tmp_path / "conflicts.png"), full_page=True)
    assert_labelled(ada)
    ada.get_by_role("button", name="Resolve and merge").click()
    expect(ada.locator(".flash-success")).to_contain_text("Conflicts resolved; merged into main")
    merged = ada.locator(".merge-commit").inner_text()

    fresh = tmp_path / "fresh"
    git("clone", "-q", clone_url(server, slug, "ada", token), fresh, cwd=tmp_path)
    commit, *parents = git("log", "-1", "--format=%H %P", "main", cwd=fresh).split()
    assert commit.startswith(merged)
    assert parents == [target_head, source_head]
    saturday = PLAN.replace("Friday", "Saturday")
    assert (fresh / FILE).read_text() == saturday.replace(ours, resolution, 1)
    git("fsck", "--strict", cwd=fresh)
