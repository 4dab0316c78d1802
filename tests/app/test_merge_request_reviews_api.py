"""The review conversation through /api/v1: comment, reply, resolve, verdicts, reviewers.

Uses the same document and helpers as the merge request API tests; the protection rule
on ``main`` asks for one approval and no open threads, so the verdicts and resolutions
are seen to move the request from "needs_approvals" to "mergeable".
"""

from __future__ import annotations

from flask import Flask

from app import db
from app.documents import protection
from app.documents.models import Document
from tests.app.test_merge_requests_api import (  # noqa: F401  (fixtures)
    TEXT,
    call,
    doc,
    make_branch,
    open_request,
    repositories_stay_clean,
    tokens,
)


def _rule(app: Flask, slug: str) -> None:
    with app.app_context():
        document = db.session().query(Document).filter_by(slug=slug).one()
        db.session().add(
            protection.BranchProtection(
                document_id=document.id,
                pattern="main",
                push_role="maintainer",
                required_approvals=1,
                block_unresolved=True,
            )
        )
        db.session().commit()


def test_comment_resolve_and_approve_make_it_mergeable(app: Flask, client, tokens, doc) -> None:  # noqa: F811
    _rule(app, doc)
    make_branch(client, tokens, doc, "monday", TEXT.replace("Friday", "Monday"))
    number = open_request(client, tokens, doc, "monday").json["number"]
    base = f"/documents/{doc}/merge-requests/{number}"
    assert call(client, "GET", base, tokens["ed"]).json["mergeability"] == "needs_approvals"

    line = call(
        client, "POST", f"{base}/comments", tokens["rev"],
        {"body": "Is **Monday** right? @ed", "path": "document.md", "side": "new", "line": 3},
    )  # fmt: skip
    assert line.status_code == 201, line.json
    thread = line.json
    assert (thread["path"], thread["side"], thread["line_start"]) == ("document.md", "new", 3)
    assert thread["comments"][0]["author"] == "rev" and not thread["resolved"]

    changes = call(client, "POST", f"{base}/reviews", tokens["rev"],
                   {"verdict": "request_changes", "body": "See the thread."})  # fmt: skip
    assert changes.status_code == 201
    assert changes.json["review"]["verdict"] == "changes_requested"
    assert changes.json["merge_request"]["mergeable"] is False

    reply = call(client, "POST", f"{base}/comments", tokens["ed"],
                 {"body": "Yes, Monday.", "thread": thread["id"]})  # fmt: skip
    assert reply.status_code == 201
    assert [c["author"] for c in reply.json["comments"]] == ["rev", "ed"]

    general = call(client, "POST", f"{base}/comments", tokens["rev"], {"body": "Looks good."})
    assert general.status_code == 201 and general.json["path"] is None

    resolved = call(client, "POST", f"{base}/comments/{thread['id']}/resolve", tokens["rev"])
    assert resolved.status_code == 200 and resolved.json["resolved"] is True
    # The general comment is a thread too; resolving it leaves nothing open.
    call(client, "POST", f"{base}/comments/{general.json['id']}/resolve", tokens["rev"])

    approved = call(client, "POST", f"{base}/approve", tokens["rev"])
    assert approved.status_code == 201, approved.json
    assert approved.json["merge_request"]["mergeability"] == "mergeable"

    talk = call(client, "GET", f"{base}/comments", tokens["vi"]).json
    assert talk["approvals"] == 1 and talk["unresolved"] == 0
    assert talk["changes_requested"] is False
    assert [r["verdict"] for r in talk["reviews"]] == ["changes_requested", "approved"]

    merged = call(client, "POST", f"{base}/merge", tokens["mo"], {"style": "merge"})
    assert merged.status_code == 200, merged.json


def test_review_api_refusals(app: Flask, client, tokens, doc) -> None:  # noqa: F811
    make_branch(client, tokens, doc, "monday", TEXT.replace("Friday", "Monday"))
    number = open_request(client, tokens, doc, "monday").json["number"]
    base = f"/documents/{doc}/merge-requests/{number}"

    # The author cannot approve their own request; a viewer may not comment or approve;
    # a stranger does not see the document at all; no token is a 401.
    assert call(client, "POST", f"{base}/approve", tokens["ed"]).status_code == 422
    assert call(client, "POST", f"{base}/approve", tokens["vi"]).status_code == 403
    assert call(client, "POST", f"{base}/comments", tokens["vi"], {"body": "x"}).status_code == 403
    assert call(client, "POST", f"{base}/approve", tokens["stranger"]).status_code == 404
    assert call(client, "GET", f"{base}/comments", tokens["stranger"]).status_code == 404
    assert call(client, "POST", f"{base}/approve").status_code == 401

    bad = [
        ({"verdict": "lgtm"}, "verdict"),
        ({}, "verdict"),
    ]
    for body, name in bad:
        response = call(client, "POST", f"{base}/reviews", tokens["rev"], body)
        assert response.status_code == 422 and response.json["error"]["field"] == name
    for body in (
        {"body": ""},
        {"body": "x", "path": "document.md"},  # no line
        {"body": "x", "path": "document.md", "line": 999},
        {"body": "x", "path": "document.md", "line": "3"},
        {"body": "x", "path": "document.md", "line": 1, "side": "middle"},
    ):
        response = call(client, "POST", f"{base}/comments", tokens["rev"], body)
        assert response.status_code == 422, (body, response.json)
    assert call(client, "POST", f"{base}/comments/999999/resolve", tokens["rev"]).status_code == 404

    asked = call(client, "POST", f"{base}/reviewers", tokens["ed"], {"username": "rev"})
    assert asked.status_code == 201 and asked.json["reviewers"] == ["rev"]
    for username in ("vi", "nobody-here"):  # a viewer cannot review; an unknown user
        response = call(client, "POST", f"{base}/reviewers", tokens["ed"], {"username": username})
        assert response.status_code == 422
