"""Releases (web and API), the branch graph page and annotations on versions."""

from __future__ import annotations

import io
import zipfile

import pygit2
from flask import Flask

import gitstore
from app import db
from app.accounts.services import get_user_by_username
from app.documents import services
from app.releases.models import Annotation

API = "/api/v1"
AUTHOR = gitstore.Author("Ada", "ada@example.com")


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _repo(app: Flask, slug: str = "plans") -> gitstore.Document:
    with app.app_context():
        return services.repo(services.get_document(slug))


def _commit(app: Flask, text: str, *, path: str = "document.md", branch: str = "main") -> str:
    repo = _repo(app)
    return repo.write(
        branch, [gitstore.Put(path, text)], parent=repo.head(branch), author=AUTHOR, message=text
    )


def _as(client, accounts, username: str):
    """Sign in as ``username`` (signing out whoever was signed in)."""
    if getattr(client, "signed_in_as", None):
        client.submit("/logout", page="/documents")
    accounts.login(client, username)
    client.signed_in_as = username
    return client


def _release(client, slug: str, tag: str, ref: str = "main", notes: str = ""):
    page = f"/d/{slug}/releases"
    return client.submit(page, {"tag": tag, "ref": ref, "notes": notes}, page=page)


# --- releases in the web -------------------------------------------------------------------


def test_maintainer_creates_a_release_with_notes(app: Flask, client, accounts, team) -> None:
    slug = team
    first = _repo(app).head("main")
    _as(client, accounts, "maria")
    notes = "# Spring\n\n* new **chapter**\n\n<script>alert(1)</script>"
    created = _release(client, slug, "v1.0", "main", notes)
    assert created.status_code == 302 and created.headers["Location"].endswith("#release-v1.0")
    tag = _repo(app).repo.references["refs/tags/v1.0"]
    obj = _repo(app).repo[tag.target]
    assert isinstance(obj, pygit2.Tag)  # annotated, not lightweight
    assert obj.tagger.name == "maria" and obj.message.strip() == notes.strip()
    assert str(obj.peel(pygit2.Commit).id) == first
    page = client.get(f"/d/{slug}/releases").get_data(as_text=True)
    assert "<strong>chapter</strong>" in page and "<script>alert" not in page
    assert "maria tagged" in page and "First release." in page
    # A second release lists the diff since the first, with a link to the compare page.
    _commit(app, "# Plans\n\nMore words here.\n")
    _commit(app, "appendix\n", path="appendix.md")
    assert _release(client, slug, "v1.1", "main", "Second").status_code == 302
    page = client.get(f"/d/{slug}/releases").get_data(as_text=True)
    assert page.index("release-v1.1") < page.index("release-v1.0")  # newest first
    assert "2 files changed" in page
    assert f"/d/{slug}/compare?from=v1.0&amp;to=v1.1" in page


def test_tags_are_immutable_and_names_are_checked(app: Flask, client, accounts, team) -> None:
    slug = team
    _as(client, accounts, "maria")
    assert _release(client, slug, "v1").status_code == 302
    target = _repo(app).resolve("refs/tags/v1")
    _commit(app, "later\n")
    again = _release(client, slug, "v1", "main", "again")
    assert again.status_code == 409
    assert "already exists" in again.get_data(as_text=True)
    assert _repo(app).resolve("refs/tags/v1") == target  # never moved
    for bad in ("bad..name", "-x", "a b", ""):
        assert _release(client, slug, bad).status_code == 422, bad
    unknown = _release(client, slug, "v2", "no-such-branch")
    assert unknown.status_code == 422 and "no-such-branch" in unknown.get_data(as_text=True)
    # From a commit id.
    assert _release(client, slug, "v0", target[:12]).status_code == 302
    assert _repo(app).resolve("refs/tags/v0") == target


def test_who_may_tag_and_delete(app: Flask, client, accounts, team) -> None:
    slug = team
    for name in ("ed", "rita", "vic"):
        _as(client, accounts, name)
        assert _release(client, slug, f"by-{name}").status_code == 403
        page = client.get(f"/d/{slug}/releases").get_data(as_text=True)
        assert "New release" not in page and "Delete release" not in page
    _as(client, accounts, "stranger")
    hidden = client.submit(f"/d/{slug}/releases", {"tag": "x"}, page="/documents")
    assert hidden.status_code == 404
    assert client.get(f"/d/{slug}/releases").status_code == 404
    _as(client, accounts, "ada")  # the owner may tag, but not delete
    assert _release(client, slug, "v1").status_code == 302
    assert client.get(f"/d/{slug}/releases/v1/delete").status_code == 403
    assert "Delete release" not in client.get(f"/d/{slug}/releases").get_data(as_text=True)
    assert _repo(app).repo.references.get("refs/tags/v1") is not None
    _as(client, accounts, "root")  # site admins delete, after typing the name
    assert "Delete release" in client.get(f"/d/{slug}/releases").get_data(as_text=True)
    url = f"/d/{slug}/releases/v1/delete"
    wrong = client.submit(url, {"confirm": "v2"})
    assert wrong.status_code == 422 and "Type the tag name" in wrong.get_data(as_text=True)
    assert _repo(app).repo.references.get("refs/tags/v1") is not None
    assert client.submit(url, {"confirm": "v1"}).status_code == 302
    assert _repo(app).repo.references.get("refs/tags/v1") is None
    assert client.get(url).status_code == 404


def test_tags_made_outside_the_web_are_releases(app: Flask, client, accounts, team) -> None:
    slug = team
    repo = _repo(app)
    head = repo.head("main")
    repo.repo.create_reference("refs/tags/light", head)  # a lightweight tag
    repo.create_tag(
        "v9", head, tagger=gitstore.Author("Git", "git@example.com"), message="From git"
    )
    _as(client, accounts, "vic")
    page = client.get(f"/d/{slug}/releases").get_data(as_text=True)
    assert 'id="release-light"' in page and "Lightweight tag" in page
    assert 'id="release-v9"' in page and "From git" in page and "Git tagged" in page


def test_downloads(app: Flask, client, accounts, team) -> None:
    slug = team
    _commit(app, "# Plans\n\nReleased text.\n")
    _commit(app, "figure\n", path="figures/one.txt")
    _as(client, accounts, "maria")
    _release(client, slug, "release/2026")
    _commit(app, "# Plans\n\nAfter the release.\n")
    _as(client, accounts, "vic")
    md = client.get(f"/d/{slug}/releases/release/2026/download.md")
    assert md.status_code == 200 and md.data == b"# Plans\n\nReleased text.\n"
    assert md.headers["Content-Disposition"] == 'attachment; filename="plans-release-2026.md"'
    archive = client.get(f"/d/{slug}/releases/release/2026/archive.zip")
    assert archive.status_code == 200 and archive.mimetype == "application/zip"
    assert 'filename="plans-release-2026.zip"' in archive.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(archive.data)) as zf:
        files = {n: zf.read(n) for n in zf.namelist() if not n.endswith("/")}
    assert files == {"document.md": b"# Plans\n\nReleased text.\n", "figures/one.txt": b"figure\n"}
    assert client.get(f"/d/{slug}/releases/nope/archive.zip").status_code == 404
    assert client.get(f"/d/{slug}/releases/nope/download.md").status_code == 404
    _as(client, accounts, "stranger")
    assert client.get(f"/d/{slug}/releases/release/2026/archive.zip").status_code == 404


# --- releases in the API -----------------------------------------------------------------


def test_release_api(app: Flask, client, accounts, team) -> None:
    slug = team
    url = f"{API}/documents/{slug}/releases"
    maintainer, editor, admin = (accounts.token(n) for n in ("maria", "ed", "root"))
    body = {"tag": "v1.0", "ref": "main", "notes": "First *cut*"}
    created = client.post(url, json=body, headers=auth(maintainer))
    assert created.status_code == 201
    release = created.json
    assert release["tag"] == "v1.0" and release["notes"] == "First *cut*"
    assert release["target"] == _repo(app).head("main")
    assert release["tagger"]["name"] == "maria" and release["previous"] is None
    assert release["zip_url"].endswith(f"/d/{slug}/releases/v1.0/archive.zip")
    duplicate = client.post(url, json=body, headers=auth(maintainer))
    assert duplicate.status_code == 409 and duplicate.json["error"]["code"] == "tag_exists"
    assert client.post(url, json=body).status_code == 401
    assert client.post(url, json={"tag": "v2"}, headers=auth(editor)).status_code == 403
    stranger = client.post(url, json={"tag": "v2"}, headers=auth(accounts.token("stranger")))
    assert stranger.status_code == 404
    for bad, code in (
        ({"tag": "a..b"}, "invalid_ref_name"),
        ({"tag": 1}, "invalid"),
        ({}, "invalid"),
        ({"tag": "v2", "ref": "ghost"}, "unknown_ref"),
    ):
        response = client.post(url, json=bad, headers=auth(maintainer))
        assert (response.status_code, response.json["error"]["code"]) == (422, code), bad
    _commit(app, "changed\n")
    second = client.post(url, json={"tag": "v2"}, headers=auth(maintainer)).json
    assert second["previous"] == "v1.0" and second["files_changed"] == 1
    listed = client.get(url, headers=auth(editor)).json["releases"]
    assert [r["tag"] for r in listed] == ["v2", "v1.0"]
    tags = client.get(f"{API}/documents/{slug}/tags", headers=auth(editor)).json["tags"]
    assert [t["name"] for t in tags] == ["v2", "v1.0"] and tags[0]["annotated"] is True
    # Deleting: site admins only.
    owner = accounts.token("ada")
    assert client.delete(f"{url}/v1.0", headers=auth(owner)).status_code == 403
    assert client.delete(f"{url}/v1.0", headers=auth(maintainer)).status_code == 403
    assert client.delete(f"{url}/v1.0").status_code == 401
    assert client.delete(f"{url}/v1.0", headers=auth(admin)).status_code == 204
    assert client.delete(f"{url}/v1.0", headers=auth(admin)).status_code == 404
    remaining = client.get(f"{API}/documents/{slug}/tags", headers=auth(editor)).json["tags"]
    assert [t["name"] for t in remaining] == ["v2"]
    # Another writer holds the tag's ref lock: a conflict, and nothing is deleted.
    lock = _repo(app).path / "refs" / "tags" / "v2.lock"
    lock.write_text("")
    try:
        held = client.delete(f"{url}/v2", headers=auth(admin))
    finally:
        lock.unlink()
    assert (held.status_code, held.json["error"]["code"]) == (409, "conflict")
    assert [t.name for t in _repo(app).tags()] == ["v2"]
    # A private document's releases are not there for anonymous callers.
    assert client.get(f"{API}/documents/{slug}/releases").status_code == 404


# --- the branch graph ----------------------------------------------------------------------


def _fill(app: Flask, count: int) -> list[str]:
    """``count`` commits on main, written straight into the repository (fast)."""
    repo = _repo(app).repo
    parent = repo.references["refs/heads/main"].target
    tree = repo[parent].tree
    oids = []
    for i in range(count):
        sig = pygit2.Signature("Ada", "ada@example.com", 1_700_000_000 + i, 0)
        builder = repo.TreeBuilder(tree)
        builder.insert(
            "document.md", repo.create_blob(f"v{i}\n".encode()), pygit2.GIT_FILEMODE_BLOB
        )
        parent = repo.create_commit(None, sig, sig, f"step {i}", builder.write(), [parent])
        oids.append(str(parent))
    repo.references["refs/heads/main"].set_target(parent)
    return oids


def test_graph_page_draws_a_thousand_versions(app: Flask, client, accounts, team) -> None:
    slug = team
    oids = _fill(app, 1000)  # + the first commit: 1001 versions
    _repo(app).create_branch("draft", oids[500])
    _as(client, accounts, "vic")
    page = client.get(f"/d/{slug}/graph").get_data(as_text=True)
    svg = page[page.index("<svg") : page.index("</svg>")]
    assert svg.count('class="graph-node') == 1000
    assert svg.count('class="graph-link"') == 1000
    assert f'href="/d/{slug}/commit/{oids[-1]}"' in svg
    assert svg.count('<tr class="graph-row">') == 0  # the table is outside the SVG
    assert page.count('<tr class="graph-row">') == 1000
    assert ">main</text>" in svg and ">draft</text>" in svg
    second = client.get(f"/d/{slug}/graph?page=2").get_data(as_text=True)
    assert second.count('class="graph-node') == 1
    assert client.get(f"/d/{slug}/graph?page=3").status_code == 404
    _as(client, accounts, "stranger")
    assert client.get(f"/d/{slug}/graph").status_code == 404


def test_graph_page_shows_merges_and_tags(app: Flask, client, accounts, team) -> None:
    slug = team
    repo = _repo(app)
    repo.create_branch("draft", "main")
    _commit(app, "draft\n", path="draft.md", branch="draft")
    _commit(app, "main\n")
    ours, theirs = repo.repo[repo.head("main")], repo.repo[repo.head("draft")]
    index = repo.repo.merge_commits(ours, theirs)
    sig = pygit2.Signature("Ada", "ada@example.com")
    merge = repo.repo.create_commit(
        "refs/heads/main",
        sig,
        sig,
        "Merge draft",
        index.write_tree(repo.repo),
        [ours.id, theirs.id],
    )
    repo.create_tag("v1", str(merge), tagger=AUTHOR, message="one")
    _as(client, accounts, "vic")
    page = client.get(f"/d/{slug}/graph").get_data(as_text=True)
    assert page.count('class="graph-node graph-merge"') == 1
    assert 'class="graph-edge graph-edge-merge"' in page
    assert ">v1</text>" in page and 'class="ref-label ref-tag">v1<' in page


# --- annotations ------------------------------------------------------------------------------


def _comment(client, slug: str, oid: str, body: str, reply_to: int | None = None):
    form = {"body": body}
    if reply_to is not None:
        form["reply_to"] = str(reply_to)
    return client.submit(
        f"/d/{slug}/commit/{oid}/annotations", form, page=f"/d/{slug}/commit/{oid}"
    )


def _ids(app: Flask) -> list[int]:
    with app.app_context():
        return [a.id for a in db.session().query(Annotation).order_by(Annotation.id)]


def test_threads_replies_and_markdown(app: Flask, client, accounts, team) -> None:
    slug = team
    oid = _repo(app).head("main")
    _as(client, accounts, "rita")
    first = _comment(client, slug, oid[:10], "Is **this** right? <img src=x onerror=alert(1)>")
    (root,) = _ids(app)
    assert first.status_code == 302 and first.headers["Location"].endswith(f"#annotation-{root}")
    _as(client, accounts, "ed")
    assert _comment(client, slug, oid, "Yes, @rita.", reply_to=root).status_code == 302
    _, reply = _ids(app)
    # A reply to a reply joins the same thread.
    assert _comment(client, slug, oid, "Thanks", reply_to=reply).status_code == 302
    with app.app_context():
        rows = db.session().query(Annotation).order_by(Annotation.id).all()
        assert [r.thread_id for r in rows] == [None, root, root]
        assert {r.commit_oid for r in rows} == {oid}
    page = client.get(f"/d/{slug}/commit/{oid}").get_data(as_text=True)
    section = page[page.index('id="annotations"') :]
    assert "<strong>this</strong>" in section and "<img" not in section
    assert section.index("Is <strong>this</strong>") < section.index("Yes, @rita.")
    assert section.count('class="annotation annotation-reply"') == 2
    # The history shows a count for the version.
    history = client.get(f"/d/{slug}/history").get_data(as_text=True)
    assert f'data-commit="{oid}">3 comments<' in history
    assert f".history-item:has(#to-{oid})" in history
    # Mentioned readers are notified.
    with app.app_context():
        from app.notifications.models import Notification

        rita = get_user_by_username("rita")
        kinds = [n.kind for n in db.session().query(Notification).filter_by(user_id=rita.id)]
    assert "mentioned" in kinds
    # Empty comments are refused with a message.
    empty = _comment(client, slug, oid, "   ")
    assert "Write something first." in client.get(empty.headers["Location"]).get_data(as_text=True)
    assert len(_ids(app)) == 3
    assert _comment(client, slug, "f" * 40, "ghost version").status_code == 404


def test_edit_and_delete_rights(app: Flask, client, accounts, team) -> None:
    slug = team
    oid = _repo(app).head("main")
    _as(client, accounts, "rita")
    _comment(client, slug, oid, "original")
    (root,) = _ids(app)
    edit_url = f"/d/{slug}/annotations/{root}/edit"
    delete_url = f"/d/{slug}/annotations/{root}/delete"
    page = f"/d/{slug}/commit/{oid}"
    assert client.submit(edit_url, {"body": "edited *text*"}, page=page).status_code == 302
    html = client.get(page).get_data(as_text=True)
    assert "edited <em>text</em>" in html and "(edited)" in html
    # Not the author: editing is refused (403), even for the owner; deleting too for an editor.
    _as(client, accounts, "ed")
    assert client.submit(edit_url, {"body": "hijack"}, page=page).status_code == 403
    assert client.submit(delete_url, {}, page=page).status_code == 403
    _as(client, accounts, "ada")
    assert client.submit(edit_url, {"body": "hijack"}, page=page).status_code == 403
    # Viewers cannot comment; strangers see nothing.
    _as(client, accounts, "vic")
    assert _comment(client, slug, oid, "viewer says").status_code == 403
    assert 'name="body"' not in client.get(page).get_data(as_text=True)
    _as(client, accounts, "stranger")
    assert client.submit(edit_url, {"body": "x"}, page="/documents").status_code == 404
    assert (
        client.submit(
            f"/d/{slug}/commit/{oid}/annotations", {"body": "x"}, page="/documents"
        ).status_code
        == 404
    )
    # An annotation id of another document is 404 there.
    with app.app_context():
        stranger = get_user_by_username("stranger")
        services.create_document(stranger, "Elsewhere")
    assert (
        client.submit(
            f"/d/elsewhere/annotations/{root}/edit", {"body": "x"}, page="/documents"
        ).status_code
        == 404
    )
    with app.app_context():
        assert db.session().get(Annotation, root).body == "edited *text*"
    # A maintainer may delete someone else's thread (with its replies).
    _as(client, accounts, "ed")
    _comment(client, slug, oid, "a reply", reply_to=root)
    _as(client, accounts, "maria")
    assert client.submit(delete_url, {}, page=page).status_code == 302
    assert _ids(app) == []
    assert client.submit(delete_url, {}, page=page).status_code == 404


def test_tags_with_names_quire_would_refuse(app: Flask, client, accounts, team) -> None:
    """Git allows a quote in a tag name; such a tag downloads safely and can be deleted."""
    slug = team
    repo = _repo(app)
    repo.repo.create_reference('refs/tags/odd"name', repo.head("main"))
    _as(client, accounts, "vic")
    md = client.get(f"/d/{slug}/releases/odd%22name/download.md")
    assert md.status_code == 200
    assert md.headers["Content-Disposition"] == 'attachment; filename="plans-odd-name.md"'
    admin = accounts.token("root")
    url = f"{API}/documents/{slug}/releases/odd%22name"
    assert client.delete(url, headers=auth(admin)).status_code == 204
    assert repo.repo.references.get('refs/tags/odd"name') is None
