"""Releases against a real server and the real git CLI (acceptance 4).

A release created through the web form (signed in with a password, CSRF token and
all) is an annotated tag in a ``git clone``, with the notes as its message, and the
``.zip`` the releases page offers holds exactly what ``git archive --format=zip`` of
the clone's tag holds. Tags pushed with git show up on the releases page. Chromium
checks what only a browser can: the graph's nodes sit on their table rows.
"""

from __future__ import annotations

import http.cookiejar
import io
import re
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.interop.conftest import PASSWORD

OWNER = "rel"
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class Browser:
    """A cookie-keeping HTTP client that fills in CSRF tokens like a browser form."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        try:
            with self.opener.open(self.base_url + path, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def submit(self, path: str, form: dict[str, str], *, page: str | None = None):
        status, _, html = self.get(page or path)
        assert status == 200, (page or path, status)
        token = CSRF.search(html.decode()).group(1)
        body = urllib.parse.urlencode({**form, "csrf_token": token}).encode()
        request = urllib.request.Request(self.base_url + path, data=body, method="POST")
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()


def _zip_files(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {i.filename: archive.read(i) for i in archive.infolist() if not i.is_dir()}


def test_web_release_is_an_annotated_tag_and_its_zip_is_git_archive(
    server, git, tmp_path: Path
) -> None:
    server.user(OWNER)
    slug = server.document(OWNER, "Release Notes Book")
    # Some history with a nested file, pushed with git.
    work = tmp_path / "author"
    git("clone", "-q", server.url(slug, OWNER), str(work))
    (work / "chapters").mkdir()
    (work / "chapters" / "one.md").write_text("# One\n\nFirst chapter.\n")
    (work / "document.md").write_text("# Release Notes Book\n\nIntroduction.\n")
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "Chapters", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    released = git("rev-parse", "HEAD", cwd=work).stdout.strip()

    browser = Browser(server.base_url)
    status, _ = browser.submit("/login", {"login": OWNER, "password": PASSWORD})
    assert status == 200  # followed the redirect after signing in
    notes = "## Spring edition\n\n- chapter one\n- an introduction"
    status, page = browser.submit(
        f"/d/{slug}/releases", {"tag": "v1.0", "ref": "main", "notes": notes}
    )
    assert status == 200 and b"Release v1.0 created." in page
    # Later work is not part of the release.
    (work / "document.md").write_text("# Release Notes Book\n\nAfter the release.\n")
    git("commit", "-q", "-am", "After", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)

    clone = tmp_path / "reader"
    git("clone", "-q", server.url(slug, OWNER), str(clone))
    assert git("cat-file", "-t", "v1.0", cwd=clone).stdout.strip() == "tag"
    assert git("rev-parse", "v1.0^{commit}", cwd=clone).stdout.strip() == released
    message = git("tag", "-l", "--format=%(contents)", "v1.0", cwd=clone).stdout
    assert message.strip() == notes
    tagger = git("tag", "-l", "--format=%(taggername) %(taggeremail)", "v1.0", cwd=clone).stdout
    assert tagger.strip() == f"{OWNER} <{OWNER}@example.com>"

    status, headers, data = browser.get(f"/d/{slug}/releases/v1.0/archive.zip")
    assert status == 200 and headers["Content-Type"] == "application/zip"
    expected = tmp_path / "expected.zip"
    git("archive", "--format=zip", "-o", str(expected), "v1.0", cwd=clone)
    ours, theirs = _zip_files(data), _zip_files(expected.read_bytes())
    assert sorted(ours) == sorted(theirs) == ["chapters/one.md", "document.md"]
    assert ours == theirs
    assert ours["document.md"] == b"# Release Notes Book\n\nIntroduction.\n"
    status, headers, markdown = browser.get(f"/d/{slug}/releases/v1.0/download.md")
    assert status == 200 and markdown == ours["document.md"]
    assert "attachment" in headers["Content-Disposition"]

    # The tag cannot be moved, through the web or with git.
    status, page = browser.submit(f"/d/{slug}/releases", {"tag": "v1.0", "ref": "main"})
    assert status == 409 and b"already exists" in page
    git("tag", "-f", "-a", "-m", "moved", "v1.0", "HEAD", cwd=clone)
    moved = git("push", "-f", "origin", "refs/tags/v1.0", cwd=clone, check=False)
    assert moved.returncode != 0 and "tags are never moved" in moved.output


def test_tags_pushed_with_git_appear_on_the_releases_page(server, git, tmp_path: Path) -> None:
    server.user(OWNER)
    slug = server.document(OWNER, "Pushed Tags")
    work = tmp_path / "work"
    git("clone", "-q", server.url(slug, OWNER), str(work))
    git("tag", "-a", "-m", "Pushed *with* git", "v2.0", cwd=work)
    git("tag", "light", cwd=work)
    git("push", "-q", "origin", "v2.0", "light", cwd=work)

    browser = Browser(server.base_url)
    browser.submit("/login", {"login": OWNER, "password": PASSWORD})
    status, _, page = browser.get(f"/d/{slug}/releases")
    html = page.decode()
    assert status == 200
    assert 'id="release-v2.0"' in html and "Pushed <em>with</em> git" in html
    assert "Push Er tagged" in html  # the tagger recorded by git, not a row of ours
    assert 'id="release-light"' in html and "Lightweight tag" in html
    status, _, data = browser.get(f"/d/{slug}/releases/v2.0/archive.zip")
    assert status == 200 and _zip_files(data) == {"document.md": b"# Pushed Tags\n"}


@pytest.mark.browser
def test_in_chromium_release_graph_and_comments(server, git, tmp_path: Path) -> None:
    """A real browser: tag a release, read the graph (nodes in step with the table), comment."""
    from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS, require_browser

    require_browser()
    from playwright.sync_api import expect, sync_playwright

    server.user(OWNER)
    slug = server.document(OWNER, "Graph In Browser")
    work = tmp_path / "work"
    git("clone", "-q", server.url(slug, OWNER), str(work))
    git("checkout", "-q", "-b", "draft", cwd=work)
    for i in range(3):
        (work / "draft.md").write_text(f"draft {i}\n")
        git("add", "draft.md", cwd=work)
        git("commit", "-q", "-m", f"Draft {i}", cwd=work)
    git("checkout", "-q", "main", cwd=work)
    (work / "document.md").write_text("# Graph In Browser\n\nMain work.\n")
    git("commit", "-q", "-am", "Main work", cwd=work)
    git("merge", "-q", "--no-ff", "-m", "Merge draft", "draft", cwd=work)
    git("push", "-q", "origin", "main", "draft", cwd=work)

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = chromium.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{server.base_url}/login")
            page.fill("#login", OWNER)
            page.fill("#password", PASSWORD)
            page.click("form button[type=submit]")
            page.goto(f"{server.base_url}/d/{slug}/releases")
            page.fill("#tag", "v1.0")
            page.fill("#notes", "Merged the **draft**.")
            page.click("#new-release button[type=submit]")
            expect(page.locator(".flash")).to_contain_text("Release v1.0 created.")
            expect(page.locator("#release-v1\\.0 .release-notes strong")).to_have_text("draft")

            page.goto(f"{server.base_url}/d/{slug}/graph")
            nodes = page.locator("svg.branch-graph circle.graph-node")
            rows = page.locator("tr.graph-row")
            expect(nodes).to_have_count(6)  # create, 3 drafts, main work, merge
            expect(rows).to_have_count(6)
            expect(page.locator("svg.branch-graph circle.graph-merge")).to_have_count(1)
            for index in range(6):
                node, row = nodes.nth(index).bounding_box(), rows.nth(index).bounding_box()
                assert node and row
                node_middle = node["y"] + node["height"] / 2
                row_middle = row["y"] + row["height"] / 2
                assert abs(node_middle - row_middle) <= 3, (index, node, row)
            labels = page.locator("svg.branch-graph .graph-label text").all_text_contents()
            assert {"main", "draft", "v1.0"} <= set(labels)
            unlabelled = page.evaluate(
                """() => Array.from(document.querySelectorAll('a.graph-link'))
                    .filter((a) => !(a.getAttribute('aria-label') || '').trim()).length"""
            )
            assert unlabelled == 0
            # A node is a link to its version; comment there.
            page.locator("a.graph-link").first.click()
            expect(page).to_have_url(re.compile(rf"/d/{slug}/commit/[0-9a-f]{{40}}$"))
            expect(page.locator("h2").first).to_have_text("Merge draft")
            page.fill("#annotation-body", "Ship *this* one.")
            page.click(".annotation-new button[type=submit]")
            expect(page.locator(".annotation-body em")).to_have_text("this")
            page.goto(f"{server.base_url}/d/{slug}/history")
            expect(page.locator(".annotation-count")).to_have_text("1 comment")
        finally:
            chromium.close()
