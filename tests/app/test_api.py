"""The JSON API end to end: real app, real repositories, both database backends.

No mocks: each test drives /api/v1 through the Flask test client and checks what
landed in Git by reading it back through the API.
"""

from __future__ import annotations

import base64
import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

API = "/api/v1"

BASE_TEXT = "# Notes\n\nFirst paragraph.\n\nkeep 1\nkeep 2\nkeep 3\n\nSecond paragraph.\n"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create(client, token: str, title: str = "Notes", visibility: str = "private") -> dict[str, Any]:
    response = client.post(
        f"{API}/documents", json={"title": title, "visibility": visibility}, headers=auth(token)
    )
    assert response.status_code == 201, response.json
    return response.json


def head(client, token: str, slug: str, branch: str = "main") -> str:
    branches = client.get(f"{API}/documents/{slug}/branches", headers=auth(token)).json["branches"]
    return next(b["head"] for b in branches if b["name"] == branch)


def put(client, token: str, slug: str, path: str, content: str, parent: str, **extra: Any):
    body = {"content": content, "parent": parent, "message": f"Edit {path}", **extra}
    return client.put(f"{API}/documents/{slug}/files/{path}", json=body, headers=auth(token))


def read(client, token: str | None, slug: str, path: str, ref: str | None = None):
    query = f"?ref={ref}" if ref else ""
    headers = auth(token) if token else {}
    return client.get(f"{API}/documents/{slug}/files/{path}{query}", headers=headers)


@pytest.fixture
def alice(accounts) -> str:
    """An ordinary user's token (the site's first account becomes admin, so "root" takes that)."""
    accounts.create("root")
    accounts.create("alice")
    return accounts.token("alice")


@pytest.fixture
def doc(client, alice) -> dict[str, Any]:
    """A private document by alice whose document.md holds BASE_TEXT."""
    document = create(client, alice)
    slug = document["slug"]
    response = put(client, alice, slug, "document.md", BASE_TEXT, head(client, alice, slug))
    assert response.status_code == 201
    return document


def add_member(app: Flask, slug: str, username: str, role: str) -> None:
    from app.accounts.services import get_user_by_username
    from app.documents.services import get_document, set_member

    with app.app_context():
        document = get_document(slug)
        set_member(get_user_by_username("alice"), document, username, role)


# --- documents ----------------------------------------------------------------------


def test_create_and_get_document(client, alice):
    created = create(client, alice, "Field notes", "public")
    assert set(created) >= {
        "id",
        "slug",
        "title",
        "visibility",
        "default_branch",
        "clone_url",
        "web_url",
    }
    assert created["slug"] == "field-notes"
    assert created["visibility"] == "public"
    assert created["default_branch"] == "main"
    assert re.fullmatch(r"[0-9a-f]{32}", created["id"])
    assert created["clone_url"] == "http://localhost/field-notes.git"
    assert created["web_url"] == "http://localhost/field-notes"

    fetched = client.get(f"{API}/documents/field-notes", headers=auth(alice)).json
    assert fetched["id"] == created["id"]
    assert fetched["role"] == "owner"
    assert fetched["updated_at"].endswith("+00:00")

    first = read(client, alice, "field-notes", "document.md").json
    assert first["content"] == "# Field notes\n"
    assert first["encoding"] == "utf-8"
    assert first["size"] == len(first["content"])


def test_clone_url_uses_base_url(app, client, alice):
    app.config["BASE_URL"] = "https://quire.example"
    created = create(client, alice)
    assert created["clone_url"] == f"https://quire.example/{created['slug']}.git"
    assert created["web_url"] == f"https://quire.example/{created['slug']}"


def test_create_validation(client, alice):
    missing = client.post(f"{API}/documents", json={"visibility": "private"}, headers=auth(alice))
    assert missing.status_code == 422
    assert missing.json["error"]["code"] == "invalid"
    bad = client.post(
        f"{API}/documents", json={"title": "x", "visibility": "secret"}, headers=auth(alice)
    )
    assert bad.status_code == 422
    assert bad.json["error"]["code"] == "invalid"
    wrong_type = client.post(f"{API}/documents", json={"title": 3}, headers=auth(alice))
    assert wrong_type.status_code == 422
    form = client.post(f"{API}/documents", data={"title": "x"}, headers=auth(alice))
    assert form.status_code == 415
    assert form.json["error"]["code"] == "unsupported_media_type"
    broken = client.post(
        f"{API}/documents", data="{not json", content_type="application/json", headers=auth(alice)
    )
    assert broken.status_code == 400
    assert "JSON" in broken.json["error"]["message"]


def test_list_documents(client, accounts, alice):
    accounts.create("bob")
    bob = accounts.token("bob")
    create(client, alice, "Alpha private")
    create(client, alice, "Beta public", "public")
    create(client, bob, "Gamma bob")

    mine = client.get(f"{API}/documents?scope=mine", headers=auth(alice)).json
    assert mine["total"] == 2
    assert {d["title"] for d in mine["documents"]} == {"Alpha private", "Beta public"}

    seen_by_bob = client.get(f"{API}/documents", headers=auth(bob)).json
    assert {d["title"] for d in seen_by_bob["documents"]} == {"Beta public", "Gamma bob"}

    anonymous = client.get(f"{API}/documents").json
    assert [d["title"] for d in anonymous["documents"]] == ["Beta public"]

    searched = client.get(f"{API}/documents?q=ALPHA", headers=auth(alice)).json
    assert [d["title"] for d in searched["documents"]] == ["Alpha private"]

    paged = client.get(f"{API}/documents?scope=mine&limit=1&offset=1", headers=auth(alice)).json
    assert paged["total"] == 2 and len(paged["documents"]) == 1

    assert client.get(f"{API}/documents?limit=0").status_code == 400
    assert client.get(f"{API}/documents?scope=everything").status_code == 400

    admin = client.get(f"{API}/documents", headers=auth(accounts.token("root"))).json
    assert admin["total"] == 3


def test_current_user(client, alice):
    me = client.get(f"{API}/user", headers=auth(alice))
    assert me.status_code == 200
    assert me.json["username"] == "alice"
    assert me.json["email"] == "alice@example.com"
    assert me.json["is_admin"] is False
    anonymous = client.get(f"{API}/user")
    assert anonymous.status_code == 401
    assert anonymous.json["error"]["code"] == "unauthorized"


# --- saving -------------------------------------------------------------------------


def test_put_merges_stale_parent_and_refuses_conflicts(client, alice, doc):
    slug = doc["slug"]
    start = head(client, alice, slug)

    first = put(client, alice, slug, "document.md", BASE_TEXT.replace("First", "Opening"), start)
    assert first.status_code == 201
    assert first.json["merged"] is False
    assert head(client, alice, slug) == first.json["commit"]

    # Another client, still on `start`, edits a different paragraph: merged cleanly.
    second = put(client, alice, slug, "document.md", BASE_TEXT.replace("Second", "Closing"), start)
    assert second.status_code == 201, second.json
    assert second.json["merged"] is True
    merged = read(client, alice, slug, "document.md").json["content"]
    assert "Opening paragraph." in merged and "Closing paragraph." in merged

    # A third, also on `start`, rewrites the paragraph the first one changed: conflict.
    before = head(client, alice, slug)
    theirs = BASE_TEXT.replace("First", "Initial")
    third = put(client, alice, slug, "document.md", theirs, start)
    assert third.status_code == 409
    error = third.json["error"]
    assert error["code"] == "conflict"
    [conflict] = error["conflicts"]
    assert conflict["path"] == "document.md"
    assert conflict["base"] == BASE_TEXT
    assert conflict["theirs"] == theirs
    assert "Opening paragraph." in conflict["ours"]
    assert head(client, alice, slug) == before
    assert read(client, alice, slug, "document.md").json["content"] == merged


def test_put_unchanged_content_is_200_with_head(client, alice, doc):
    slug = doc["slug"]
    current = head(client, alice, slug)
    again = put(client, alice, slug, "document.md", BASE_TEXT, current)
    assert again.status_code == 200
    assert again.json == {"commit": current, "merged": False}
    assert head(client, alice, slug) == current


def test_put_new_file_on_branch_and_validation(app, client, alice, doc):
    slug = doc["slug"]
    main_head = head(client, alice, slug)
    made = client.post(
        f"{API}/documents/{slug}/branches", json={"name": "draft"}, headers=auth(alice)
    )
    assert made.status_code == 201
    saved = put(client, alice, slug, "notes/idea.md", "idea\n", main_head, branch="draft")
    assert saved.status_code == 201
    assert read(client, alice, slug, "notes/idea.md", ref="draft").json["content"] == "idea\n"
    assert read(client, alice, slug, "notes/idea.md").status_code == 404
    assert head(client, alice, slug) == main_head

    no_parent = client.put(
        f"{API}/documents/{slug}/files/a.md", json={"content": "x"}, headers=auth(alice)
    )
    assert no_parent.status_code == 422
    assert no_parent.json["error"]["code"] == "invalid"
    branch_name = put(client, alice, slug, "a.md", "x", "main")
    assert branch_name.status_code == 422
    not_json = client.put(f"{API}/documents/{slug}/files/a.md", data="x", headers=auth(alice))
    assert not_json.status_code == 415
    assert "application/json" in not_json.json["error"]["message"]
    bad_b64 = put(client, alice, slug, "a.bin", "***", main_head, encoding="base64")
    assert bad_b64.status_code == 422

    app.config["MAX_FILE_BYTES"] = 10
    too_big = put(client, alice, slug, "a.md", "x" * 11, main_head)
    assert too_big.status_code == 413
    assert too_big.json["error"]["code"] == "too_large"
    assert head(client, alice, slug) == main_head


def test_binary_round_trip(client, alice, doc):
    slug = doc["slug"]
    data = bytes(range(256)) * 4
    saved = put(
        client,
        alice,
        slug,
        "img/pixel.bin",
        base64.b64encode(data).decode(),
        head(client, alice, slug),
        encoding="base64",
    )
    assert saved.status_code == 201
    got = read(client, alice, slug, "img/pixel.bin").json
    assert got["encoding"] == "base64"
    assert base64.b64decode(got["content"]) == data
    assert got["size"] == len(data)
    assert got["commit"] == saved.json["commit"]

    tree = client.get(f"{API}/documents/{slug}/tree?path=img", headers=auth(alice)).json
    assert [(e["name"], e["kind"], e["size"]) for e in tree["entries"]] == [
        ("pixel.bin", "blob", len(data))
    ]
    top = client.get(f"{API}/documents/{slug}/tree", headers=auth(alice)).json
    assert [e["name"] for e in top["entries"]] == ["img", "document.md"]
    assert top["commit"] == saved.json["commit"]


@pytest.mark.parametrize(
    "path", ["../escape.md", "a/../../escape.md", ".git/config", "%2e%2e/escape.md"]
)
def test_traversal_is_400_and_writes_nothing(client, alice, doc, path):
    slug = doc["slug"]
    before = head(client, alice, slug)
    response = put(client, alice, slug, path, "pwned", before)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_path"
    assert head(client, alice, slug) == before
    assert read(client, alice, slug, path).status_code == 400


def test_read_errors(client, alice, doc):
    slug = doc["slug"]
    missing = read(client, alice, slug, "nope.md")
    assert missing.status_code == 404
    assert missing.json["error"]["code"] == "not_found"
    bad_ref = read(client, alice, slug, "document.md", ref="no-such-branch")
    assert bad_ref.status_code == 404
    assert bad_ref.json["error"]["code"] == "not_found"
    assert client.get(f"{API}/documents/nope", headers=auth(alice)).status_code == 404
    wrong_method = client.patch(f"{API}/documents/{slug}", headers=auth(alice))
    assert wrong_method.status_code == 405
    assert wrong_method.json["error"]["code"] == "method_not_allowed"
    unknown = client.get(f"{API}/no/such/endpoint")
    assert unknown.status_code == 404
    assert unknown.json["error"]["code"] == "not_found"


def test_delete_file(client, alice, doc):
    slug = doc["slug"]
    start = head(client, alice, slug)
    added = put(client, alice, slug, "old.md", "old\n", start).json["commit"]
    stale = client.delete(
        f"{API}/documents/{slug}/files/old.md?parent={start}", headers=auth(alice)
    )
    assert stale.status_code == 409
    assert stale.json["error"]["code"] == "conflict"
    deleted = client.delete(
        f"{API}/documents/{slug}/files/old.md?parent={added}", headers=auth(alice)
    )
    assert deleted.status_code == 200
    assert read(client, alice, slug, "old.md").status_code == 404
    assert read(client, alice, slug, "old.md", ref=added).status_code == 200
    gone = client.delete(
        f"{API}/documents/{slug}/files/old.md?parent={deleted.json['commit']}", headers=auth(alice)
    )
    assert gone.status_code == 404


# --- history ------------------------------------------------------------------------


def test_commits_pagination_covers_every_commit_once(client, alice, doc):
    slug = doc["slug"]
    for n in range(6):
        assert (
            put(client, alice, slug, f"f{n}.md", f"{n}\n", head(client, alice, slug)).status_code
            == 201
        )
    everything = client.get(f"{API}/documents/{slug}/commits?limit=100", headers=auth(alice)).json
    assert everything["next_cursor"] is None
    all_oids = [c["oid"] for c in everything["commits"]]
    assert len(all_oids) == 8  # create + BASE_TEXT + 6
    assert all_oids[0] == head(client, alice, slug)

    seen: list[str] = []
    cursor = None
    while True:
        query = f"?limit=3&after={cursor}" if cursor else "?limit=3"
        page = client.get(f"{API}/documents/{slug}/commits{query}", headers=auth(alice)).json
        seen += [c["oid"] for c in page["commits"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == all_oids

    newest = everything["commits"][0]
    assert newest["summary"] == "Edit f5.md"
    assert newest["author"] == {"name": "alice", "email": "alice@example.com"}
    assert newest["parents"] == [all_oids[1]]
    assert newest["short"] == newest["oid"][:7]
    assert newest["co_authors"] == []

    only = client.get(f"{API}/documents/{slug}/commits?path=f2.md", headers=auth(alice)).json
    assert [c["summary"] for c in only["commits"]] == ["Edit f2.md"]

    for bad in ("0", "101", "ten"):
        response = client.get(f"{API}/documents/{slug}/commits?limit={bad}", headers=auth(alice))
        assert response.status_code == 400
        assert response.json["error"]["code"] == "bad_request"


def test_commit_detail_lists_files(client, alice, doc):
    slug = doc["slug"]
    oid = put(client, alice, slug, "extra.md", "a\nb\n", head(client, alice, slug)).json["commit"]
    detail = client.get(f"{API}/documents/{slug}/commits/{oid}", headers=auth(alice)).json
    assert detail["oid"] == oid
    assert detail["summary"] == "Edit extra.md"
    assert detail["files"] == [
        {
            "path": "extra.md",
            "old_path": None,
            "status": "added",
            "additions": 2,
            "deletions": 0,
            "binary": False,
        }
    ]
    unknown = client.get(f"{API}/documents/{slug}/commits/{'0' * 40}", headers=auth(alice))
    assert unknown.status_code == 404


def test_diff_has_word_spans(client, alice, doc):
    slug = doc["slug"]
    start = head(client, alice, slug)
    changed = BASE_TEXT.replace("First paragraph.", "First brown paragraph.")
    end = put(client, alice, slug, "document.md", changed, start).json["commit"]
    diff = client.get(
        f"{API}/documents/{slug}/diff?from={start}&to={end}", headers=auth(alice)
    ).json
    assert diff["from"] == start and diff["to"] == end
    [file] = diff["files"]
    assert file["path"] == "document.md" and file["status"] == "modified"
    assert (file["additions"], file["deletions"]) == (1, 1)
    lines = [line for hunk in file["hunks"] for line in hunk["lines"]]
    added = next(line for line in lines if line["kind"] == "add")
    assert added["text"] == "First brown paragraph."
    assert any(w["kind"] == "insert" and "brown" in w["text"] for w in added["words"])
    assert "".join(w["text"] for w in added["words"]) == added["text"]
    context = next(line for line in lines if line["kind"] == "context")
    assert context["words"] is None

    default_to = client.get(f"{API}/documents/{slug}/diff?from={start}", headers=auth(alice)).json
    assert default_to["to"] == end
    assert client.get(f"{API}/documents/{slug}/diff", headers=auth(alice)).status_code == 400


# --- branches -----------------------------------------------------------------------


def test_branches_create_list_delete(client, alice, doc):
    slug = doc["slug"]
    main_head = head(client, alice, slug)
    made = client.post(
        f"{API}/documents/{slug}/branches",
        json={"name": "review/one", "from": "main"},
        headers=auth(alice),
    )
    assert made.status_code == 201
    assert made.json["name"] == "review/one" and made.json["head"] == main_head
    assert made.json["is_default"] is False

    listed = client.get(f"{API}/documents/{slug}/branches", headers=auth(alice)).json["branches"]
    assert [b["name"] for b in listed] == ["main", "review/one"]
    assert listed[0]["is_default"] is True

    again = client.post(
        f"{API}/documents/{slug}/branches", json={"name": "review/one"}, headers=auth(alice)
    )
    assert again.status_code == 409
    assert again.json["error"]["code"] == "branch_exists"
    bad = client.post(
        f"{API}/documents/{slug}/branches", json={"name": "bad..name"}, headers=auth(alice)
    )
    assert bad.status_code == 422
    no_source = client.post(
        f"{API}/documents/{slug}/branches",
        json={"name": "x", "from": "nowhere"},
        headers=auth(alice),
    )
    assert no_source.status_code == 404

    gone = client.delete(f"{API}/documents/{slug}/branches/review/one", headers=auth(alice))
    assert gone.status_code == 204
    assert [
        b["name"]
        for b in client.get(f"{API}/documents/{slug}/branches", headers=auth(alice)).json[
            "branches"
        ]
    ] == ["main"]
    assert (
        client.delete(
            f"{API}/documents/{slug}/branches/review/one", headers=auth(alice)
        ).status_code
        == 404
    )

    default = client.delete(f"{API}/documents/{slug}/branches/main", headers=auth(alice))
    assert default.status_code == 422
    assert default.json["error"]["code"] == "default_branch"


# --- permissions and authentication ------------------------------------------------


def test_anonymous_reads_public_but_not_private(client, alice):
    public = create(client, alice, "Open", "public")["slug"]
    private = create(client, alice, "Closed")["slug"]
    assert client.get(f"{API}/documents/{public}").json["role"] == "viewer"
    assert read(client, None, public, "document.md").status_code == 200
    assert client.get(f"{API}/documents/{public}/commits").status_code == 200
    for url in (
        f"/documents/{private}",
        f"/documents/{private}/files/document.md",
        f"/documents/{private}/commits",
    ):
        response = client.get(API + url)
        assert response.status_code == 404
        assert response.json["error"]["code"] == "not_found"


def test_writes_without_token_are_401(client, alice):
    slug = create(client, alice, "Open", "public")["slug"]
    parent = head(client, alice, slug)
    for response in (
        client.put(
            f"{API}/documents/{slug}/files/document.md", json={"content": "x", "parent": parent}
        ),
        client.post(f"{API}/documents", json={"title": "x"}),
        client.post(f"{API}/documents/{slug}/branches", json={"name": "x"}),
        client.delete(f"{API}/documents/{slug}/files/document.md?parent={parent}"),
    ):
        assert response.status_code == 401
        assert response.json["error"]["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert head(client, alice, slug) == parent


def test_session_cookie_is_ignored(client, accounts, alice):
    slug = create(client, alice)["slug"]
    accounts.login(client, "alice")
    assert client.get(f"{API}/documents/{slug}").status_code == 404
    assert client.post(f"{API}/documents", json={"title": "x"}).status_code == 401


def test_viewer_cannot_write_and_non_member_sees_nothing(app, client, accounts, alice, doc):
    slug = doc["slug"]
    accounts.create("bob")
    accounts.create("carol")
    bob, carol = accounts.token("bob"), accounts.token("carol")
    add_member(app, slug, "bob", "viewer")
    parent = head(client, alice, slug)

    assert client.get(f"{API}/documents/{slug}", headers=auth(bob)).json["role"] == "viewer"
    assert read(client, bob, slug, "document.md").status_code == 200
    denied = put(client, bob, slug, "document.md", "mine", parent)
    assert denied.status_code == 403
    assert denied.json["error"]["code"] == "forbidden"
    no_branch = client.post(
        f"{API}/documents/{slug}/branches", json={"name": "x"}, headers=auth(bob)
    )
    assert no_branch.status_code == 403

    for response in (
        client.get(f"{API}/documents/{slug}", headers=auth(carol)),
        read(client, carol, slug, "document.md"),
        put(client, carol, slug, "document.md", "mine", parent),
    ):
        assert response.status_code == 404
    assert head(client, alice, slug) == parent

    add_member(app, slug, "bob", "editor")
    assert put(client, bob, slug, "document.md", "mine\n", parent).status_code == 201


def test_bad_tokens_are_401(app, client, alice, doc):
    from app import db
    from app.accounts.services import create_token, get_user_by_username, revoke_token
    from app.db import utcnow

    with app.app_context():
        user = get_user_by_username("alice")
        token, secret = create_token(user, "soon revoked")
        assert client.get(f"{API}/user", headers=auth(secret)).status_code == 200
        revoke_token(user, token.id)
        expiring, expired = create_token(user, "expires", expires_at=utcnow() + timedelta(days=1))
        expiring.expires_at = utcnow() - timedelta(seconds=1)
        db.session().commit()
    for bad in (secret, expired, "not-a-token"):
        for response in (
            client.get(f"{API}/user", headers=auth(bad)),
            client.get(f"{API}/documents", headers=auth(bad)),
            put(client, bad, doc["slug"], "document.md", "x", head(client, alice, doc["slug"])),
        ):
            assert response.status_code == 401
            assert response.json["error"]["code"] == "unauthorized"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


# --- OpenAPI ------------------------------------------------------------------------


def test_openapi_describes_every_route(app, client):
    spec = client.get(f"{API}/openapi.json").json
    assert spec["openapi"].startswith("3.1")
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "Error" in spec["components"]["schemas"]
    # Every blueprint's routes under /api/v1, not only the core API's.
    routes = [rule for rule in app.url_map.iter_rules() if rule.rule.startswith(f"{API}/")]
    assert routes
    for rule in routes:
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule.removeprefix(API))
        assert path in spec["paths"], f"{rule.rule} missing from openapi.json"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in spec["paths"][path], f"{method} {rule.rule} missing"
            operation = spec["paths"][path][method.lower()]
            declared = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert declared == set(rule.arguments), f"{method} {rule.rule} path parameters"
