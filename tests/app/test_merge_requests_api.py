"""/api/v1/documents/<slug>/merge-requests: shapes, filters, merges and every error."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from app import db
from app.accounts.services import get_user_by_username
from app.documents import protection
from app.documents import services as documents
from app.mergerequests import reviews, services

API = "/api/v1"
TEXT = "# Notes\n\nWe meet on Friday. Bring the draft.\n"


@pytest.fixture(autouse=True)
def repositories_stay_clean(app: Flask) -> Iterator[None]:
    """Whatever a test did, every repository is ``git fsck --strict`` clean afterwards."""
    yield
    for repo in sorted(Path(app.config["REPOS_ROOT"]).glob("*/*.git")):
        fsck = subprocess.run(
            ["git", "fsck", "--strict", "--no-progress"], cwd=repo, capture_output=True, text=True
        )
        assert fsck.returncode == 0, f"{repo}: {fsck.stdout}{fsck.stderr}"


@pytest.fixture
def doc(app: Flask, accounts) -> str:
    for name in ("olga", "mo", "ed", "rev", "vi", "stranger"):
        accounts.create(name)
    with app.app_context():
        owner = get_user_by_username("olga")
        document = documents.create_document(owner, "Notes")
        for name, role in (("mo", "maintainer"), ("ed", "editor"), ("rev", "reviewer"),
                           ("vi", "viewer")):  # fmt: skip
            documents.set_member(owner, document, name, role)
        git = documents.repo(document)
        documents.save_file(
            owner, document, branch="main", path="document.md", content=TEXT,
            message="Notes", parent=git.head("main"),
        )  # fmt: skip
        slug = document.slug
        db.get_db().remove()
        return slug


@pytest.fixture
def tokens(accounts, doc) -> dict[str, str]:
    return {name: accounts.token(name) for name in ("olga", "mo", "ed", "rev", "vi", "stranger")}


def call(client, method: str, path: str, token: str | None = None, body=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.open(f"{API}{path}", method=method, json=body, headers=headers)


def make_branch(client, tokens, slug: str, name: str, text: str) -> str:
    response = call(client, "POST", f"/documents/{slug}/branches", tokens["ed"], {"name": name})
    assert response.status_code == 201, response.json
    response = call(
        client, "PUT", f"/documents/{slug}/files/document.md", tokens["ed"],
        {"content": text, "parent": response.json["head"], "branch": name},
    )  # fmt: skip
    assert response.status_code == 201, response.json
    return response.json["commit"]


def open_request(client, tokens, slug: str, source: str, **extra):
    body = {"source": source, "target": "main", "title": f"Take {source}", **extra}
    return call(client, "POST", f"/documents/{slug}/merge-requests", tokens["ed"], body)


def test_open_get_list_shapes(client, tokens, doc) -> None:
    head = make_branch(client, tokens, doc, "monday", TEXT.replace("Friday", "Monday"))
    response = open_request(client, tokens, doc, "monday", description="Moves it")
    assert response.status_code == 201, response.json
    body = response.json
    assert response.headers["Location"].endswith(f"/documents/{doc}/merge-requests/1")
    assert {k: body[k] for k in ("number", "state", "mergeable", "conflicts", "head")} == {
        "number": 1, "state": "open", "mergeable": True, "conflicts": [], "head": head,
    }  # fmt: skip
    assert body["mergeability"] == "mergeable" and body["source"] == "monday"
    assert body["author"] == "ed" and body["web_url"].endswith(f"/d/{doc}/merge-requests/1")

    got = call(client, "GET", f"/documents/{doc}/merge-requests/1", tokens["vi"])
    assert got.status_code == 200 and got.json["number"] == 1

    make_branch(client, tokens, doc, "other", TEXT + "\nMore.\n")
    call(client, "POST", f"/documents/{doc}/merge-requests", tokens["mo"],
         {"source": "other", "title": "Other"})  # fmt: skip
    listing = call(client, "GET", f"/documents/{doc}/merge-requests", tokens["ed"]).json
    assert [m["number"] for m in listing["merge_requests"]] == [2, 1]
    assert listing["counts"] == {"open": 2, "merged": 0, "closed": 0}
    mine = call(client, "GET", f"/documents/{doc}/merge-requests?author=me", tokens["ed"]).json
    assert [m["number"] for m in mine["merge_requests"]] == [1]
    assert mine["counts"]["open"] == 1
    by_mo = call(client, "GET", f"/documents/{doc}/merge-requests?author=mo", tokens["vi"]).json
    assert [m["number"] for m in by_mo["merge_requests"]] == [2]
    none = call(client, "GET", f"/documents/{doc}/merge-requests?state=merged", tokens["ed"]).json
    assert none["merge_requests"] == []
    bad = call(client, "GET", f"/documents/{doc}/merge-requests?state=odd", tokens["ed"])
    assert bad.status_code == 400
    anon_me = call(client, "GET", f"/documents/{doc}/merge-requests?author=me")
    assert anon_me.status_code in (401, 404)


def test_review_requested_filter(app: Flask, client, tokens, doc) -> None:
    make_branch(client, tokens, doc, "a", TEXT.replace("Friday", "Monday"))
    open_request(client, tokens, doc, "a")
    with app.app_context():
        document = documents.get_document(doc)
        mr = services.get_merge_request(document, 1)
        reviews.request_review(get_user_by_username("ed"), mr, get_user_by_username("rev"))
        db.get_db().remove()
    asked = call(client, "GET", f"/documents/{doc}/merge-requests?reviewer=me", tokens["rev"]).json
    assert [m["number"] for m in asked["merge_requests"]] == [1]
    other = call(client, "GET", f"/documents/{doc}/merge-requests?reviewer=me", tokens["mo"]).json
    assert other["merge_requests"] == []


@pytest.mark.parametrize(
    ("who", "body", "status", "code"),
    [
        (None, {"source": "a", "title": "t"}, 401, "unauthorized"),
        ("stranger", {"source": "a", "title": "t"}, 404, "not_found"),
        ("vi", {"source": "a", "title": "t"}, 403, "forbidden"),
        ("rev", {"source": "a", "title": "t"}, 403, "forbidden"),
        ("ed", {"source": "nope", "title": "t"}, 422, "invalid"),
        ("ed", {"source": "main", "title": "t"}, 422, "invalid"),
        ("ed", {"source": "a"}, 422, "invalid"),
        ("ed", {"source": "a", "title": 5}, 422, "invalid"),
        ("ed", {"source": "a", "title": "t", "draft": "yes"}, 422, "invalid"),
    ],
)
def test_open_errors(client, tokens, doc, who, body, status, code) -> None:
    make_branch(client, tokens, doc, "a", TEXT + "\nA.\n")
    token = tokens[who] if who else None
    response = call(client, "POST", f"/documents/{doc}/merge-requests", token, body)
    assert response.status_code == status, response.json
    assert response.json["error"]["code"] == code


def test_open_needs_json(client, tokens, doc) -> None:
    response = client.post(
        f"{API}/documents/{doc}/merge-requests",
        data="source=a",
        headers={"Authorization": f"Bearer {tokens['ed']}"},
    )
    assert response.status_code == 415


def test_read_errors(client, tokens, doc) -> None:
    make_branch(client, tokens, doc, "a", TEXT + "\nA.\n")
    open_request(client, tokens, doc, "a")
    assert (
        call(client, "GET", f"/documents/{doc}/merge-requests/1", tokens["stranger"]).status_code
        == 404
    )
    assert call(client, "GET", f"/documents/{doc}/merge-requests/1").status_code == 404
    assert (
        call(client, "GET", f"/documents/{doc}/merge-requests/7", tokens["ed"]).status_code == 404
    )
    assert (
        call(client, "GET", f"/documents/{doc}/merge-requests", tokens["stranger"]).status_code
        == 404
    )
    assert call(client, "GET", "/documents/nope/merge-requests", tokens["ed"]).status_code == 404


def test_merge_each_style_and_the_409_reasons(app: Flask, client, tokens, doc) -> None:
    # needs_approvals under a rule, then mergeable once approved
    with app.app_context():
        protection.save_rule(
            get_user_by_username("olga"), documents.get_document(doc),
            pattern="main", push_role="maintainer", required_approvals=1,
        )  # fmt: skip
        db.get_db().remove()
    make_branch(client, tokens, doc, "a", TEXT.replace("Friday", "Monday"))
    assert open_request(client, tokens, doc, "a").json["mergeability"] == "needs_approvals"
    url = f"/documents/{doc}/merge-requests/1/merge"
    refused = call(client, "POST", url, tokens["mo"], {"style": "merge"})
    assert refused.status_code == 409
    error = refused.json["error"]
    assert (error["code"], error["reason"]) == ("not_mergeable", "needs_approvals")
    assert "approvals" in error["message"]
    # who may merge: maintainers; editors get 403, strangers 404, no token 401
    assert call(client, "POST", url, tokens["ed"], {}).status_code == 403
    assert call(client, "POST", url, tokens["vi"], {}).status_code == 403
    assert call(client, "POST", url, tokens["stranger"], {}).status_code == 404
    assert call(client, "POST", url, None, {}).status_code == 401
    assert call(client, "POST", url, tokens["mo"], {"style": "rebase"}).status_code == 422
    bad = call(client, "POST", url, tokens["mo"], {"resolutions": {"document.md": 3}})
    assert bad.status_code == 422
    with app.app_context():
        mr = services.get_merge_request(documents.get_document(doc), 1)
        reviews.submit_review(get_user_by_username("rev"), mr, "approved")
        db.get_db().remove()
    assert call(client, "GET", f"/documents/{doc}/merge-requests/1", tokens["ed"]).json["mergeable"]
    merged = call(client, "POST", url, tokens["mo"], {"style": "merge", "delete_source": True})
    assert merged.status_code == 200, merged.json
    commit = merged.json["commit"]
    assert merged.json["merge_request"]["state"] == "merged"
    assert merged.json["merge_request"]["merge_commit"] == commit
    again = call(client, "POST", url, tokens["mo"], {})
    assert again.status_code == 409 and again.json["error"]["reason"] == "merged"
    branches = call(client, "GET", f"/documents/{doc}/branches", tokens["ed"]).json["branches"]
    assert "a" not in {b["name"] for b in branches}
    with app.app_context():
        git = documents.repo(documents.get_document(doc))
        assert len(git.commit(commit).parents) == 2


def test_merge_conflicts_409_then_resolutions(app: Flask, client, tokens, doc) -> None:
    make_branch(client, tokens, doc, "sun", TEXT.replace("Friday", "Sunday"))
    with app.app_context():
        document = documents.get_document(doc)
        git = documents.repo(document)
        documents.save_file(
            get_user_by_username("olga"), document, branch="main", path="document.md",
            content=TEXT.replace("Friday", "Saturday"), message="sat", parent=git.head("main"),
        )  # fmt: skip
        db.get_db().remove()
    body = open_request(client, tokens, doc, "sun").json
    assert (body["mergeable"], body["conflicts"]) == (False, ["document.md"])
    url = f"/documents/{doc}/merge-requests/1/merge"
    refused = call(client, "POST", url, tokens["mo"], {"style": "merge"})
    assert refused.status_code == 409 and refused.json["error"]["reason"] == "conflicts"
    final = "# Notes\n\nWe meet on the weekend. Bring the draft.\n"
    squash = call(client, "POST", url, tokens["mo"],
                  {"style": "squash", "resolutions": {"document.md": final}})  # fmt: skip
    assert squash.status_code == 409
    merged = call(client, "POST", url, tokens["mo"],
                  {"style": "merge", "resolutions": {"document.md": final}})  # fmt: skip
    assert merged.status_code == 200, merged.json
    content = call(client, "GET", f"/documents/{doc}/files/document.md", tokens["ed"]).json
    assert content["content"] == final and content["commit"] == merged.json["commit"]


def test_ff_and_squash_through_the_api(client, tokens, doc) -> None:
    head = make_branch(client, tokens, doc, "ff", TEXT + "\nFF.\n")
    open_request(client, tokens, doc, "ff")
    ff = call(client, "POST", f"/documents/{doc}/merge-requests/1/merge", tokens["mo"],
              {"style": "ff"})  # fmt: skip
    assert ff.status_code == 200 and ff.json["commit"] == head
    make_branch(client, tokens, doc, "sq", TEXT + "\nFF.\nSQ.\n")
    open_request(client, tokens, doc, "sq")
    sq = call(client, "POST", f"/documents/{doc}/merge-requests/2/merge", tokens["mo"],
              {"style": "squash"})  # fmt: skip
    assert sq.status_code == 200
    info = call(client, "GET", f"/documents/{doc}/commits/{sq.json['commit']}", tokens["ed"]).json
    assert info["parents"] == [head]


def test_draft_and_up_to_date_reasons(client, tokens, doc) -> None:
    make_branch(client, tokens, doc, "d", TEXT + "\nD.\n")
    body = open_request(client, tokens, doc, "d", draft=True).json
    assert body["mergeability"] == "draft"
    refused = call(client, "POST", f"/documents/{doc}/merge-requests/1/merge", tokens["mo"], {})
    assert refused.json["error"]["reason"] == "draft"
    call(client, "POST", f"/documents/{doc}/branches", tokens["ed"], {"name": "same"})
    body = open_request(client, tokens, doc, "same").json
    assert body["mergeability"] == "up_to_date"
    refused = call(client, "POST", f"/documents/{doc}/merge-requests/2/merge", tokens["mo"], {})
    assert refused.status_code == 409 and refused.json["error"]["reason"] == "up_to_date"


def test_close_and_reopen(client, tokens, doc) -> None:
    make_branch(client, tokens, doc, "a", TEXT + "\nA.\n")
    open_request(client, tokens, doc, "a")
    base = f"/documents/{doc}/merge-requests/1"
    assert call(client, "POST", f"{base}/close", tokens["rev"]).status_code == 403
    assert call(client, "POST", f"{base}/close", tokens["vi"]).status_code == 403
    assert call(client, "POST", f"{base}/close", tokens["stranger"]).status_code == 404
    assert call(client, "POST", f"{base}/close").status_code == 401
    closed = call(client, "POST", f"{base}/close", tokens["ed"])
    assert closed.status_code == 200 and closed.json["state"] == "closed"
    assert call(client, "POST", f"{base}/close", tokens["ed"]).status_code == 422
    counts = call(client, "GET", f"/documents/{doc}/merge-requests", tokens["ed"]).json["counts"]
    assert counts == {"open": 0, "merged": 0, "closed": 1}
    reopened = call(client, "POST", f"{base}/reopen", tokens["mo"])
    assert reopened.status_code == 200 and reopened.json["state"] == "open"
    assert call(client, "POST", f"{base}/reopen", tokens["mo"]).status_code == 422
    assert (
        call(client, "POST", f"/documents/{doc}/merge-requests/9/close", tokens["mo"]).status_code
        == 404
    )


def test_openapi_describes_the_merge_request_routes(client) -> None:
    spec = client.get(f"{API}/openapi.json").json
    paths = spec["paths"]
    for path, methods in (
        ("/documents/{slug}/merge-requests", {"get", "post"}),
        ("/documents/{slug}/merge-requests/{number}", {"get"}),
        ("/documents/{slug}/merge-requests/{number}/merge", {"post"}),
        ("/documents/{slug}/merge-requests/{number}/close", {"post"}),
        ("/documents/{slug}/merge-requests/{number}/reopen", {"post"}),
    ):
        assert methods <= set(paths[path]), path
    assert "409" in paths["/documents/{slug}/merge-requests/{number}/merge"]["post"]["responses"]
    assert "MergeRequest" in spec["components"]["schemas"]


#: Expected status per caller: list, get, open, merge (bad style: 422 once allowed), close.
API_MATRIX = {
    "olga": (200, 200, 201, 422, 200),
    "mo": (200, 200, 201, 422, 200),
    "ed": (200, 200, 201, 403, 200),
    "rev": (200, 200, 403, 403, 403),
    "vi": (200, 200, 403, 403, 403),
    "stranger": (404, 404, 404, 404, 404),
    None: (404, 404, 401, 401, 401),
}


@pytest.mark.parametrize("who", list(API_MATRIX), ids=lambda w: w or "anonymous")
def test_permission_matrix_of_the_api(client, tokens, doc, who) -> None:
    make_branch(client, tokens, doc, "a", TEXT + "\nA.\n")
    make_branch(client, tokens, doc, "b", TEXT + "\nB.\n")
    call(client, "POST", f"/documents/{doc}/merge-requests", tokens["mo"],
         {"source": "a", "title": "By mo"})  # fmt: skip
    token = tokens[who] if who else None
    base = f"/documents/{doc}/merge-requests"
    got = (
        call(client, "GET", base, token).status_code,
        call(client, "GET", f"{base}/1", token).status_code,
        call(client, "POST", base, token, {"source": "b", "title": "Mine"}).status_code,
        call(client, "POST", f"{base}/1/merge", token, {"style": "octopus"}).status_code,
        call(client, "POST", f"{base}/1/close", token).status_code,
    )
    assert got == API_MATRIX[who]
