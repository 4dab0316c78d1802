"""Releases against a real server and the real git CLI (acceptance 4).

A release created through the web form (signed in with a password, CSRF token and
all) is an annotated tag in a ``git clone``, with the notes as its message, and the
``.zip`` the releases page offers holds exactly what ``git archive --format=zip`` of
the clone's tag holds. Tags pushed with git show up on the releases page.
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
