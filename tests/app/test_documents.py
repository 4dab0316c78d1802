"""Document pages: create, list, edit (merge or conflict), history, compare, blame, settings."""

from __future__ import annotations

import re
import subprocess

import pytest
from flask import Flask

from app.accounts.services import get_user_by_username
from app.documents import services

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00"
    b"\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture
def signed_in(app: Flask, client, accounts):
    accounts.create("ada")
    accounts.login(client, "ada")
    return client


def _create(client, title: str, visibility: str = "private") -> str:
    response = client.submit("/new", {"title": title, "visibility": visibility}, page="/new")
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"].rsplit("/", 1)[-1]


def _parent(client, slug: str, path: str = "document.md", branch: str = "main") -> str:
    html = client.get(f"/d/{slug}/edit/{branch}/{path}").get_data(as_text=True)
    return re.search(r'name="parent" value="([0-9a-f]{40})"', html).group(1)


def _save(
    client, slug: str, content: str, parent: str, message: str = "", path: str = "document.md"
):
    return client.submit(
        f"/d/{slug}/edit/main/{path}",
        {"content": content, "message": message, "parent": parent},
        page=f"/d/{slug}/edit/main/{path}",
    )


def _head(app: Flask, slug: str, branch: str = "main") -> str:
    with app.app_context():
        return services.repo(services.get_document(slug)).head(branch)


def test_create_gives_unique_slugs_and_rejects_bad_titles(signed_in) -> None:
    assert _create(signed_in, "Road map") == "road-map"
    assert _create(signed_in, "Road map") == "road-map-2"
    assert _create(signed_in, "Ünïcode — notes!") == "unicode-notes"
    response = signed_in.submit("/new", {"title": "   ", "visibility": "private"}, page="/new")
    assert response.status_code == 422
    assert "Give the document a title" in response.get_data(as_text=True)
    response = signed_in.submit("/new", {"title": "x", "visibility": "secret"}, page="/new")
    assert response.status_code == 422


def test_list_scopes_search_and_sort(app: Flask, client, accounts) -> None:
    accounts.create("root")  # the first account is site admin and sees everything
    accounts.create("ada")
    accounts.create("bob")
    accounts.login(client, "bob")
    _create(client, "Bob private")
    _create(client, "Bob public", "public")
    _create(client, "Shared plan")
    with app.app_context():
        bob = get_user_by_username("bob")
        services.set_member(bob, services.get_document("shared-plan"), "ada", "editor")
    client.submit("/logout", page="/documents")
    accounts.login(client, "ada")
    _create(client, "Ada alpha")
    page = client.get("/documents").get_data(as_text=True)
    assert "Ada alpha" in page and "Shared plan" in page and "Bob public" in page
    assert "Bob private" not in page
    mine = client.get("/documents?scope=mine").get_data(as_text=True)
    assert "Ada alpha" in mine and "Shared plan" not in mine
    shared = client.get("/documents?scope=shared").get_data(as_text=True)
    assert "Shared plan" in shared and "Ada alpha" not in shared
    found = client.get("/documents?q=ALPHA").get_data(as_text=True)
    assert "Ada alpha" in found and "Bob public" not in found
    by_title = client.get("/documents?sort=title").get_data(as_text=True)
    assert (
        by_title.index("Ada alpha") < by_title.index("Bob public") < by_title.index("Shared plan")
    )
    # Percent and underscore are literal in a title search.
    assert "Ada alpha" not in client.get("/documents?q=%25").get_data(as_text=True)


def test_stale_save_merges_cleanly_when_paragraphs_differ(app: Flask, signed_in) -> None:
    slug = _create(signed_in, "Plan")
    start = _parent(signed_in, slug)
    assert (
        _save(
            signed_in, slug, "# Plan\n\nFirst paragraph.\n\nSecond paragraph.\n", start
        ).status_code
        == 302
    )
    base = _parent(signed_in, slug)
    assert (
        _save(
            signed_in, slug, "# Plan\n\nFirst paragraph, edited.\n\nSecond paragraph.\n", base
        ).status_code
        == 302
    )
    response = _save(
        signed_in, slug, "# Plan\n\nFirst paragraph.\n\nSecond paragraph, mine.\n", base
    )
    assert response.status_code == 302
    follow = signed_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "merged" in follow
    raw = signed_in.get(f"/d/{slug}/raw/main/document.md").get_data(as_text=True)
    assert raw == "# Plan\n\nFirst paragraph, edited.\n\nSecond paragraph, mine.\n"


def test_stale_save_on_same_line_shows_conflict_and_keeps_head(app: Flask, signed_in) -> None:
    slug = _create(signed_in, "Plan")
    base = _parent(signed_in, slug)
    assert _save(signed_in, slug, "# Plan by them\n", base).status_code == 302
    head = _head(app, slug)
    response = _save(signed_in, slug, "# Plan by me\n", base)
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "Plan by them" in html and "Plan by me" in html
    assert f'name="parent" value="{head}"' in html
    assert _head(app, slug) == head  # nothing was overwritten
    # Resolving from the conflict page saves on top of their version.
    assert _save(signed_in, slug, "# Plan by us\n", head).status_code == 302
    assert (
        signed_in.get(f"/d/{slug}/raw/main/document.md").get_data(as_text=True) == "# Plan by us\n"
    )


def test_unchanged_save_makes_no_commit(app: Flask, signed_in) -> None:
    slug = _create(signed_in, "Same")
    base = _parent(signed_in, slug)
    response = _save(signed_in, slug, "# Same\n", base)
    assert response.status_code == 302
    assert _head(app, slug) == base


def test_history_compare_restore_and_revert(app: Flask, signed_in) -> None:
    slug = _create(signed_in, "Essay")
    _save(
        signed_in,
        slug,
        "# Essay\n\nThe quick brown fox jumps.\n",
        _parent(signed_in, slug),
        "First draft",
    )
    first = _head(app, slug)
    _save(signed_in, slug, "# Essay\n\nThe quick red fox jumps.\n", first, "Second draft")
    second = _head(app, slug)

    history = signed_in.get(f"/d/{slug}/history").get_data(as_text=True)
    assert (
        history.index("Second draft")
        < history.index("First draft")
        < history.index("Create document")
    )

    inline = signed_in.get(f"/d/{slug}/compare?from={first}&to={second}").get_data(as_text=True)
    assert '<del class="word-del">brown</del>' in inline
    assert '<ins class="word-ins">red</ins>' in inline
    split = signed_in.get(f"/d/{slug}/compare?from={first}&to={second}&view=split").get_data(
        as_text=True
    )
    assert '<ins class="word-ins">red</ins>' in split and "diff-split" in split
    rendered = signed_in.get(f"/d/{slug}/compare?from={first}&to={second}&view=rendered").get_data(
        as_text=True
    )
    assert (
        '<ins class="diff-ins">red</ins>' in rendered
        and '<del class="diff-del">brown</del>' in rendered
    )

    version = signed_in.get(f"/d/{slug}?ref={first}").get_data(as_text=True)
    assert "quick brown fox" in version and "as it was" in version

    response = signed_in.submit(
        f"/d/{slug}/restore/{first}", {"branch": "main"}, page=f"/d/{slug}/commit/{first}"
    )
    assert response.status_code == 302
    assert "brown" in signed_in.get(f"/d/{slug}/raw/main/document.md").get_data(as_text=True)
    restored = _head(app, slug)
    assert restored not in (first, second)

    response = signed_in.submit(
        f"/d/{slug}/revert/{restored}", {"branch": "main"}, page=f"/d/{slug}/commit/{restored}"
    )
    assert response.status_code == 302
    assert "red fox" in signed_in.get(f"/d/{slug}/raw/main/document.md").get_data(as_text=True)

    with app.app_context():
        path = app.extensions["quire.store"].path_for(services.get_document(slug).repo_id)
    log = subprocess.run(
        ["git", "--git-dir", str(path), "log", "--format=%s"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert log[2:] == ["Second draft", "First draft", "Create document"]
    assert log[0].startswith("Revert") and log[1].startswith("Restore")
    fsck = subprocess.run(
        ["git", "--git-dir", str(path), "fsck", "--strict"], capture_output=True, text=True
    )
    assert fsck.returncode == 0, fsck.stderr


def test_blame_and_commit_pages(app: Flask, signed_in, accounts, client) -> None:
    slug = _create(signed_in, "Blamed")
    _save(signed_in, slug, "# Blamed\n\nline by ada\n", _parent(signed_in, slug))
    head = _head(app, slug)
    blame = signed_in.get(f"/d/{slug}/blame/main/document.md").get_data(as_text=True)
    assert "line by ada" in blame and head[:8] in blame
    commit = signed_in.get(f"/d/{slug}/commit/{head[:10]}").get_data(as_text=True)
    assert "ada@example.com" in commit and "+1" in commit
    assert signed_in.get(f"/d/{slug}/commit/{'0' * 40}").status_code == 404
    assert signed_in.get(f"/d/{slug}/blame/main/missing.md").status_code == 404
    assert signed_in.get(f"/d/{slug}/blob/nope/document.md").status_code == 404


def test_upload_image_is_committed_and_shown_inline(app: Flask, signed_in) -> None:
    import io

    slug = _create(signed_in, "Pictures")
    response = signed_in.submit(
        f"/d/{slug}/upload",
        {"file": (io.BytesIO(PNG), "dot.png"), "branch": "main"},
        page=f"/d/{slug}",
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    raw = signed_in.get(f"/d/{slug}/raw/main/dot.png")
    assert raw.status_code == 200 and raw.data == PNG
    assert raw.headers["Content-Type"] == "image/png"
    assert "sandbox" in raw.headers["Content-Security-Policy"]
    _save(signed_in, slug, "# Pictures\n\n![a dot](dot.png)\n", _parent(signed_in, slug))
    page = signed_in.get(f"/d/{slug}").get_data(as_text=True)
    match = re.search(r'<img src="([^"]+)" alt="a dot"', page)
    assert match, page
    assert signed_in.get(match.group(1)).data == PNG
    files = signed_in.get(f"/d/{slug}").get_data(as_text=True)
    assert "dot.png" in files and "document.md" in files


def test_raw_text_is_never_html(app: Flask, signed_in) -> None:
    slug = _create(signed_in, "Raw")
    _save(signed_in, slug, "<script>alert(1)</script>\n", _parent(signed_in, slug))
    raw = signed_in.get(f"/d/{slug}/raw/main/document.md")
    assert raw.headers["Content-Type"].startswith("text/plain")
    assert raw.headers["X-Content-Type-Options"] == "nosniff"


def test_traversal_in_urls_is_refused(app: Flask, signed_in) -> None:
    slug = _create(signed_in, "Safe")
    for path in ("../../etc/passwd", ".git/config", "a/../../x"):
        assert signed_in.get(f"/d/{slug}/raw/main/{path}").status_code == 404
    base = _head(app, slug)
    response = signed_in.submit(
        f"/d/{slug}/edit/main/.git/config",
        {"content": "x", "parent": base},
        page=f"/d/{slug}/edit/main/document.md",
    )
    assert response.status_code in (302, 404)
    assert _head(app, slug) == base


def test_settings_rename_visibility_members_and_delete(app: Flask, signed_in, accounts) -> None:
    accounts.create("bob")
    slug = _create(signed_in, "Settled")
    with app.app_context():
        repo_id = services.get_document(slug).repo_id
    url = f"/d/{slug}/settings"
    response = signed_in.submit(
        url,
        {
            "form": "general",
            "title": "Settled anew",
            "slug": "settled-anew",
            "visibility": "public",
        },
    )
    assert response.status_code == 302
    # The old slug redirects to the new one (old links keep working after a rename).
    moved = signed_in.get(f"/d/{slug}/history?ref=main")
    assert moved.status_code == 301
    assert moved.headers["Location"].endswith("/d/settled-anew/history?ref=main")
    with app.app_context():
        document = services.get_document("settled-anew")
        assert document.repo_id == repo_id and document.visibility == "public"
        assert document.title == "Settled anew"
    url = "/d/settled-anew/settings"
    bad = signed_in.submit(url, {"form": "general", "title": "x", "slug": "Bad Slug!"})
    assert bad.status_code == 422 and "slug" in bad.get_data(as_text=True)
    assert (
        signed_in.submit(url, {"form": "member", "username": "bob", "role": "editor"}).status_code
        == 302
    )
    assert "bob" in signed_in.get(url).get_data(as_text=True)
    assert (
        signed_in.submit(
            url, {"form": "member", "username": "nobody", "role": "editor"}
        ).status_code
        == 422
    )
    assert (
        signed_in.submit(url, {"form": "member", "username": "bob", "role": "owner"}).status_code
        == 422
    )
    refused = signed_in.submit(url, {"form": "delete", "confirm": "wrong"})
    assert refused.status_code == 422
    with app.app_context():
        store = app.extensions["quire.store"]
        assert store.exists(repo_id)
    assert signed_in.submit(url, {"form": "delete", "confirm": "settled-anew"}).status_code == 302
    with app.app_context():
        assert services.get_document("settled-anew") is None
        assert not store.exists(repo_id)


def test_branches_create_view_and_delete(app: Flask, signed_in) -> None:
    slug = _create(signed_in, "Branchy")
    url = f"/d/{slug}/branches"
    assert signed_in.submit(url, {"name": "draft", "from": "main"}).status_code == 302
    assert "draft" in signed_in.get(url).get_data(as_text=True)
    response = signed_in.submit(url, {"name": "bad..name", "from": "main"})
    assert "Could not create" in signed_in.get(response.headers["Location"]).get_data(as_text=True)
    draft_parent = _head(app, slug, "draft")
    response = signed_in.submit(
        f"/d/{slug}/edit/draft/document.md",
        {"content": "# On draft\n", "parent": draft_parent},
        page=f"/d/{slug}/edit/draft/document.md",
    )
    assert response.status_code == 302
    assert "On draft" in signed_in.get(f"/d/{slug}/raw/draft/document.md").get_data(as_text=True)
    assert "On draft" not in signed_in.get(f"/d/{slug}/raw/main/document.md").get_data(as_text=True)
    signed_in.submit(f"/d/{slug}/branches/delete", {"name": "main"}, page=url)
    assert _head(app, slug, "main")
    assert (
        signed_in.submit(f"/d/{slug}/branches/delete", {"name": "draft"}, page=url).status_code
        == 302
    )
    assert ">draft</a>" not in signed_in.get(url).get_data(as_text=True)


def test_history_pages_with_cursor(app: Flask, signed_in) -> None:
    slug = _create(signed_in, "Long")
    with app.app_context():
        document = services.get_document(slug)
        owner = get_user_by_username("ada")
        parent = services.repo(document).head("main")
        for i in range(60):
            parent = services.save_file(
                owner,
                document,
                branch="main",
                path="document.md",
                content=f"v{i}\n",
                message=f"version {i}",
                parent=parent,
            ).commit
    first = signed_in.get(f"/d/{slug}/history").get_data(as_text=True)
    assert "version 59" in first and "version 9<" not in first
    cursor = re.search(r"after=([0-9a-f]{40})", first).group(1)
    second = signed_in.get(f"/d/{slug}/history?after={cursor}").get_data(as_text=True)
    assert "version 9<" in second and "Create document" in second and "version 59" not in second


def test_session_cookie_is_secure_over_https(app: Flask, client, accounts) -> None:
    accounts.create("ada")
    token_page = client.get("/login", base_url="https://localhost")
    assert token_page.status_code == 200
    csrf = re.search(
        r'name="csrf_token"[^>]*value="([^"]+)"', token_page.get_data(as_text=True)
    ).group(1)
    response = client.post(
        "/login",
        data={"login": "ada", "password": "correct horse battery", "csrf_token": csrf},
        base_url="https://localhost",
        headers={"Referer": "https://localhost/login"},
    )
    assert response.status_code == 302
    cookies = response.headers.getlist("Set-Cookie")
    assert cookies
    for cookie in cookies:  # the session and any other cookie Quire sets
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie, cookie
    plain = client.submit("/login", {"login": "ada", "password": "correct horse battery"})
    session = app.config.get("SESSION_COOKIE_NAME", "session")
    assert any(c.startswith(f"{session}=") for c in plain.headers.getlist("Set-Cookie"))
    assert not any("Secure" in c for c in plain.headers.getlist("Set-Cookie"))


def test_restore_to_an_unknown_branch_is_404(app: Flask, signed_in) -> None:
    slug = _create(signed_in, "Nowhere")
    head = _head(app, slug)
    response = signed_in.submit(
        f"/d/{slug}/restore/{head}", {"branch": "no-such-branch"}, page=f"/d/{slug}/commit/{head}"
    )
    assert response.status_code == 404
    assert _head(app, slug) == head
