"""The review conversation on merge requests: threads, verdicts, reviewers, mentions.

Each test builds a real document (a bare repository), a branch with real commits and a
merge request opened through the merge request services, then drives the review over
HTTP as the people involved would. New commits arrive through the web save service,
so the merge request half's refresh is what marks threads outdated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from flask import Flask
from sqlalchemy import select

import gitstore
from app import db
from app.accounts.services import get_user_by_username
from app.documents.protection import BranchProtection
from app.documents.services import (
    create_branch,
    create_document,
    get_document,
    repo,
    save_file,
    set_member,
)
from app.mergerequests import mentions, reviews
from app.mergerequests.models import (
    MergeRequest,
    MergeRequestEvent,
    Review,
    ReviewRequest,
    ReviewThread,
)

DRAFT = "# Guide\n\nLine one.\nLine two.\nLine three.\nLine four.\n"
#      lines:  1       2  3          4          5            6

MEMBERS = {"rita": "reviewer", "rex": "reviewer", "eddie": "editor", "vera": "viewer"}


@dataclass
class Setup:
    slug: str
    number: int

    @property
    def base(self) -> str:
        return f"/d/{self.slug}/merge-requests/{self.number}"


@pytest.fixture
def mr(app: Flask, accounts) -> Setup:
    """olga owns a private document; eddie proposes branch `draft` into `main`."""
    from app.mergerequests.services import open_merge_request

    for name in ("olga", "stan", *MEMBERS):
        accounts.create(name)
    with app.app_context():
        olga = get_user_by_username("olga")
        document = create_document(olga, "Guide")
        for name, role in MEMBERS.items():
            set_member(olga, document, name, role)
        eddie = get_user_by_username("eddie")
        create_branch(eddie, document, "draft", "main")
        head = repo(document).head("draft")
        save_file(
            eddie,
            document,
            branch="draft",
            path="document.md",
            content=DRAFT,
            message="Draft",
            parent=head,
        )
        request = open_merge_request(
            eddie, document, source="draft", target="main", title="A guide"
        )
        return Setup(document.slug, request.number)


def _login(app: Flask, accounts, username: str):
    from tests.conftest import Browserish

    app.test_client_class = Browserish
    client = app.test_client()
    response = accounts.login(client, username)
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:300]
    return client


def _json_post(client, url: str, data: dict, page: str):
    return client.submit(url, data, page=page, headers={"Accept": "application/json"})


def _load(app: Flask, setup: Setup) -> MergeRequest:
    document = get_document(setup.slug)
    assert document is not None
    found = db.session().scalar(
        select(MergeRequest).where(
            MergeRequest.document_id == document.id, MergeRequest.number == setup.number
        )
    )
    assert found is not None
    return found


def _comment(client, setup: Setup, body: str, **where) -> dict:
    response = _json_post(client, setup.base + "/threads", {"body": body, **where}, setup.base)
    assert response.status_code == 201, response.get_data(as_text=True)[:500]
    return response.get_json()


def _save(app: Flask, setup: Setup, content: str, *, username: str = "eddie") -> str:
    """A new commit on the source branch through the web save path (fires ref_updated)."""
    with app.app_context():
        document = get_document(setup.slug)
        user = get_user_by_username(username)
        head = repo(document).head("draft")
        return save_file(
            user,
            document,
            branch="draft",
            path="document.md",
            content=content,
            message="Revise",
            parent=head,
        ).commit


# --- threads ------------------------------------------------------------------------------


def test_line_and_range_threads_with_replies(app: Flask, accounts, mr: Setup) -> None:
    rita = _login(app, accounts, "rita")
    one = _comment(rita, mr, "Is this right?", path="document.md", side="new", line_start=4)
    assert (one["line_start"], one["line_end"], one["side"]) == (4, 4, "new")
    assert f'id="thread-{one["id"]}"' in one["html"]
    # A range chosen bottom-up is stored top-down, with the text of every line in it.
    rng = _comment(
        rita, mr, "These three", path="document.md", side="new", line_start=5, line_end=3
    )
    assert (rng["line_start"], rng["line_end"]) == (3, 5)
    # The old side is the merge base, where the file has one line.
    old = _comment(rita, mr, "Keep the title", path="document.md", side="old", line_start=1)
    too_far = _json_post(
        rita, mr.base + "/threads",
        {"body": "x", "path": "document.md", "side": "old", "line_start": "2"}, mr.base,
    )  # fmt: skip
    assert too_far.status_code == 400 and "has 1 line on" in too_far.get_json()["error"]["message"]

    eddie = _login(app, accounts, "eddie")
    response = _json_post(
        eddie, f"{mr.base}/threads/{one['id']}/replies", {"body": "Yes, it is."}, mr.base
    )
    assert response.status_code == 201
    assert [c["author"] for c in response.get_json()["comments"]] == ["rita", "eddie"]

    with app.app_context():
        request = _load(app, mr)
        thread = db.session().get(ReviewThread, rng["id"])
        assert thread.anchor_text == "Line one.\nLine two.\nLine three."
        assert thread.commit_oid == request.head_oid
        keys = reviews.threads_for_diff(request)
        assert [t.id for t in keys[("document.md", "new", 4)]] == [one["id"]]
        assert [t.id for t in keys[("document.md", "new", 5)]] == [rng["id"]]
        assert [t.id for t in keys[("document.md", "old", 1)]] == [old["id"]]
        assert db.session().get(ReviewThread, old["id"]).anchor_text == "# Guide"
        assert reviews.unresolved_count(request) == 3
        kinds = [e.kind for e in db.session().scalars(select(MergeRequestEvent))]
        assert kinds.count("commented") == 4

    # The overview shows both threads and the reply, with the text they were written on.
    page = eddie.get(mr.base).get_data(as_text=True)
    assert f'id="thread-{one["id"]}"' in page and "Yes, it is." in page
    assert "Line one.\nLine two.\nLine three." in page


def test_general_comment_and_no_js_pages(app: Flask, accounts, mr: Setup) -> None:
    rita = _login(app, accounts, "rita")
    response = rita.submit(
        mr.base + "/threads", {"body": "Looks promising overall.", "next": mr.base}, page=mr.base
    )
    assert response.status_code == 302
    assert re.search(rf"{re.escape(mr.base)}#thread-\d+$", response.headers["Location"])
    assert "Looks promising overall." in rita.get(mr.base).get_data(as_text=True)

    # The no-JavaScript form for a line shows the line and posts the same fields.
    form = rita.get(f"{mr.base}/comment?path=document.md&side=new&line=3&line_end=4")
    html = form.get_data(as_text=True)
    assert form.status_code == 200
    assert "Line one.\nLine two." in html and 'name="line_start" value="3"' in html
    # A foreign `next` is ignored: back to the request, never elsewhere.
    response = rita.submit(
        mr.base + "/threads",
        {"body": "x", "path": "document.md", "side": "new", "line_start": "3",
         "next": "https://evil.example/"},
        page=mr.base,
    )  # fmt: skip
    assert response.headers["Location"].startswith(mr.base)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"path": "document.md", "side": "new", "line_start": "99"}, "has 6 lines"),
        ({"path": "document.md", "side": "sideways", "line_start": "1"}, "old or the new"),
        ({"path": "missing.md", "side": "new", "line_start": "1"}, "not a text file"),
        ({"path": "document.md", "side": "new", "line_start": "0"}, "Choose a line"),
        ({"body": "   ", "path": "document.md", "side": "new", "line_start": "1"}, "Write"),
    ],
)
def test_bad_thread_input_is_a_clear_400(
    app: Flask, accounts, mr: Setup, fields: dict, message: str
) -> None:
    rita = _login(app, accounts, "rita")
    response = _json_post(rita, mr.base + "/threads", {"body": "hello", **fields}, mr.base)
    assert response.status_code == 400
    assert message in response.get_json()["error"]["message"]
    not_a_number = _json_post(
        rita, mr.base + "/threads", {"body": "hi", "path": "document.md", "side": "new",
                                     "line_start": "three"}, mr.base
    )  # fmt: skip
    assert not_a_number.status_code == 400


def test_edit_own_comment_only(app: Flask, accounts, mr: Setup) -> None:
    rita = _login(app, accounts, "rita")
    thread = _comment(rita, mr, "Frist!")
    comment_id = thread["comments"][0]["id"]
    url = f"{mr.base}/comments/{comment_id}/edit"
    assert rita.get(url).status_code == 200
    rex = _login(app, accounts, "rex")
    assert rex.get(url).status_code == 403
    assert rex.submit(url, {"body": "hijacked"}, page=mr.base).status_code == 403
    response = rita.submit(url, {"body": "First!"}, page=url)
    assert response.status_code == 302
    with app.app_context():
        comment = reviews.get_comment(_load(app, mr), comment_id)
        assert comment.body == "First!" and comment.edited_at is not None
    assert "(edited)" in rita.get(mr.base).get_data(as_text=True)


def test_resolve_and_unresolve_permissions(app: Flask, accounts, mr: Setup) -> None:
    rita = _login(app, accounts, "rita")
    thread_id = _comment(rita, mr, "Fix this", path="document.md", side="new", line_start=3)["id"]
    resolve, unresolve = (
        f"{mr.base}/threads/{thread_id}/{verb}" for verb in ("resolve", "unresolve")
    )

    vera = _login(app, accounts, "vera")  # a viewer reads but may not resolve
    assert vera.submit(resolve, {}, page=mr.base).status_code == 403
    stan = _login(app, accounts, "stan")  # a stranger learns nothing
    assert stan.post(resolve, data={}).status_code in (400, 404)
    assert stan.get(mr.base + "/threads.json").status_code == 404

    rex = _login(app, accounts, "rex")  # another reviewer may
    assert _json_post(rex, resolve, {}, mr.base).get_json()["resolved"] is True
    with app.app_context():
        request = _load(app, mr)
        thread = db.session().get(ReviewThread, thread_id)
        assert thread.resolved and thread.resolved_by.username == "rex"
        assert reviews.unresolved_count(request) == 0
    data = _json_post(rita, unresolve, {}, mr.base).get_json()
    assert data["resolved"] is False and data["unresolved"] == 1
    with app.app_context():
        kinds = [
            e.kind
            for e in db.session().scalars(select(MergeRequestEvent).order_by(MergeRequestEvent.id))
        ]
        assert kinds[-2:] == ["resolved", "unresolved"]


# --- outdated threads -----------------------------------------------------------------------


def test_threads_go_outdated_when_their_lines_change(app: Flask, accounts, mr: Setup) -> None:
    rita = _login(app, accounts, "rita")
    changed = _comment(rita, mr, "Reword", path="document.md", side="new", line_start=4)["id"]
    kept = _comment(rita, mr, "Fine", path="document.md", side="new", line_start=6)["id"]
    ranged = _comment(rita, mr, "Both", path="document.md", side="new", line_start=3, line_end=4)[
        "id"
    ]

    _save(app, mr, DRAFT.replace("Line two.", "Line 2, reworded."))

    with app.app_context():
        request = _load(app, mr)
        assert request.head_oid == repo(get_document(mr.slug)).head("draft")
        assert db.session().get(ReviewThread, changed).outdated
        assert db.session().get(ReviewThread, ranged).outdated
        assert not db.session().get(ReviewThread, kept).outdated
        keys = reviews.threads_for_diff(request)
        assert [t.id for ts in keys.values() for t in ts] == [kept]
    # The overview lists outdated threads apart, with the text as it was.
    page = rita.get(mr.base).get_data(as_text=True)
    outdated = page[page.index("Outdated threads") :]
    assert f'id="thread-{changed}"' in outdated and "Line two." in outdated


def test_a_thread_follows_its_lines_when_text_is_inserted_above(
    app: Flask, accounts, mr: Setup
) -> None:
    rita = _login(app, accounts, "rita")
    thread_id = _comment(rita, mr, "Hmm", path="document.md", side="new", line_start=5)["id"]
    _save(app, mr, DRAFT.replace("Line one.\n", "Line zero.\nLine one.\n"))
    with app.app_context():
        thread = db.session().get(ReviewThread, thread_id)
        assert not thread.outdated
        assert (thread.line_start, thread.line_end) == (6, 6)
        assert thread.anchor_text == "Line three."


def test_on_new_head_directly_marks_a_deleted_file_outdated(
    app: Flask, accounts, mr: Setup
) -> None:
    rita = _login(app, accounts, "rita")
    thread_id = _comment(rita, mr, "Hmm", path="document.md", side="new", line_start=2)["id"]
    with app.app_context():
        document = get_document(mr.slug)
        request = _load(app, mr)
        old = request.head_oid
        git = repo(document)
        # A write straight to Git fires no ref_updated: on_new_head alone must do the work.
        git.write(
            "draft",
            [gitstore.Put("other.md", "x\n"), gitstore.Delete("document.md")],
            parent=old,
            author=gitstore.Author("E", "e@example.com"),
            message="Move",
        )
        request.head_oid = git.head("draft")
        reviews.on_new_head(request, old, request.head_oid)
        db.session().commit()
        assert db.session().get(ReviewThread, thread_id).outdated


# --- verdicts -----------------------------------------------------------------------------


def _verdict(client, setup: Setup, value: str, body: str = ""):
    return client.submit(
        setup.base + "/reviews", {"verdict": value, "body": body, "next": setup.base},
        page=setup.base,
    )  # fmt: skip


def test_approvals_count_each_reviewers_latest_verdict(app: Flask, accounts, mr: Setup) -> None:
    rita = _login(app, accounts, "rita")
    rex = _login(app, accounts, "rex")

    def state() -> tuple[int, bool]:
        with app.app_context():
            request = _load(app, mr)
            return reviews.approval_count(request), reviews.has_changes_requested(request)

    assert _verdict(rita, mr, "approve").status_code == 302
    assert state() == (1, False)
    assert _verdict(rita, mr, "approve").status_code == 302  # twice is still one reviewer
    assert state() == (1, False)
    assert _verdict(rita, mr, "request_changes", "Please fix line 4").status_code == 302
    assert state() == (0, True)
    assert _verdict(rex, mr, "approve").status_code == 302
    assert state() == (1, True)
    assert _verdict(rita, mr, "approve").status_code == 302
    assert state() == (2, False)
    assert _verdict(rita, mr, "maybe").status_code == 302  # flashed, nothing stored
    with app.app_context():
        assert len(db.session().scalars(select(Review)).all()) == 5
    page = rita.get(mr.base).get_data(as_text=True)
    assert "2 approvals" in page and "Please fix line 4" in page
    # Analytics: one mr_reviewed per verdict, one mr_approved per approval, with the document.
    from app.analytics import tracking
    from app.analytics.models import Event

    tracking.flush()
    with app.app_context():
        events = (
            db.session()
            .scalars(
                select(Event)
                .where(Event.name.in_(["mr_reviewed", "mr_approved"]))
                .order_by(Event.id)
            )
            .all()
        )
        names = [e.name for e in events]
        assert names.count("mr_reviewed") == 5 and names.count("mr_approved") == 4
        assert {e.properties["document"] for e in events} == {mr.slug}


def test_the_author_cannot_approve_their_own_request(app: Flask, accounts, mr: Setup) -> None:
    eddie = _login(app, accounts, "eddie")
    response = eddie.submit(
        mr.base + "/reviews", {"verdict": "approve"}, page=mr.base,
        headers={"Accept": "application/json"},
    )  # fmt: skip
    assert response.status_code == 400
    assert "own merge request" in response.get_json()["error"]["message"]
    with app.app_context():
        request = _load(app, mr)
        assert reviews.approval_count(request) == 0
        assert db.session().scalars(select(Review)).all() == []
        # Even a row written behind the services' back never counts for the author.
        db.session().add(
            Review(merge_request_id=request.id, reviewer_id=request.author_id,
                   verdict="approved", commit_oid=request.head_oid)
        )  # fmt: skip
        db.session().commit()
        assert reviews.approval_count(request) == 0
    assert "You cannot approve your own" in eddie.get(mr.base).get_data(as_text=True)


@pytest.mark.parametrize("reset", [True, False])
def test_new_commits_reset_approvals_only_when_the_rule_says_so(
    app: Flask, accounts, mr: Setup, reset: bool
) -> None:
    with app.app_context():
        document = get_document(mr.slug)
        db.session().add(
            BranchProtection(document_id=document.id, pattern="main", push_role="maintainer",
                             reset_approvals=reset)
        )  # fmt: skip
        db.session().commit()
        ids = {name: get_user_by_username(name).id for name in ("olga", "rita", "rex")}
    olga, rita, rex = (_login(app, accounts, name) for name in ("olga", "rita", "rex"))
    assert _verdict(olga, mr, "request_changes").status_code == 302
    assert _verdict(rita, mr, "request_changes").status_code == 302
    assert _verdict(rita, mr, "approve").status_code == 302  # rita changed her mind
    assert _verdict(rex, mr, "approve").status_code == 302

    _save(app, mr, DRAFT + "Line five.\n")

    with app.app_context():
        request = _load(app, mr)
        standing = reviews.standing_verdicts(request)
        events = [e.kind for e in db.session().scalars(select(MergeRequestEvent))]
        if reset:
            # Approvals are dismissed; requests for changes stand; rita's earlier
            # request for changes does not come back in place of her dismissed approval.
            assert standing == {ids["olga"]: "changes_requested"}
            assert reviews.approval_count(request) == 0
            assert events.count("approvals_reset") == 1
        else:
            assert standing == {
                ids["olga"]: "changes_requested",
                ids["rita"]: "approved",
                ids["rex"]: "approved",
            }
            assert reviews.approval_count(request) == 2
            assert "approvals_reset" not in events
    # An approval of the new head counts again.
    assert _verdict(rita, mr, "approve").status_code == 302
    with app.app_context():
        assert reviews.approval_count(_load(app, mr)) == (1 if reset else 2)
    page = rex.get(mr.base).get_data(as_text=True)
    assert ("dismissed by new commits" in page) is reset


# --- reviewers, mentions, Markdown ---------------------------------------------------------


def _notified(app: Flask, kind: str) -> list[str]:
    from app.notifications.models import Notification

    with app.app_context():
        rows = db.session().scalars(
            select(Notification).where(Notification.kind == kind).order_by(Notification.id)
        )
        return [
            db.session().get(type(get_user_by_username("olga")), r.user_id).username for r in rows
        ]


def test_requesting_reviewers(app: Flask, accounts, mr: Setup) -> None:
    eddie = _login(app, accounts, "eddie")
    page = eddie.get(mr.base).get_data(as_text=True)
    datalist = page.split('id="reviewer-candidates"')[1].split("</datalist>")[0]
    suggested = re.findall(r'<option value="([^"]+)"', datalist)
    assert suggested == ["olga", "rex", "rita"]  # never the author, never a viewer
    add = mr.base + "/reviewers"
    assert (
        eddie.submit(add, {"username": "@rita", "next": mr.base}, page=mr.base).status_code == 302
    )
    assert eddie.submit(add, {"username": "rita"}, page=mr.base).status_code == 302  # once only
    bad = eddie.submit(
        add, {"username": "vera"}, page=mr.base, headers={"Accept": "application/json"}
    )
    assert bad.status_code == 400  # a viewer cannot review
    unknown = eddie.submit(
        add, {"username": "stan"}, page=mr.base, headers={"Accept": "application/json"}
    )
    assert unknown.status_code == 400 and "No reviewer" in unknown.get_json()["error"]["message"]
    with app.app_context():
        request = _load(app, mr)
        assert [r.reviewer.username for r in reviews.requested_reviewers(request)] == ["rita"]
        rita_id = get_user_by_username("rita").id
    assert _notified(app, "review_requested") == ["rita"]
    assert "rita" in eddie.get(mr.base).get_data(as_text=True)

    rex = _login(app, accounts, "rex")  # a reviewer who is not the author may not manage them
    assert rex.submit(add, {"username": "rex"}, page=mr.base).status_code == 403
    assert rex.submit(f"{add}/{rita_id}/remove", {}, page=mr.base).status_code == 403
    assert eddie.submit(f"{add}/{rita_id}/remove", {}, page=mr.base).status_code == 302
    with app.app_context():
        assert db.session().scalars(select(ReviewRequest)).all() == []


def test_mentions_reach_only_people_who_can_read(app: Flask, accounts, mr: Setup) -> None:
    rita = _login(app, accounts, "rita")
    body = "@vera and @stan, see `@rex` — and @nobody; mail ann@example.com. cc @RITA"
    assert mentions.usernames(body) == ["vera", "stan", "nobody", "rita"]
    with app.app_context():
        request = _load(app, mr)
        rita_user = get_user_by_username("rita")
        readers = reviews.mentioned_readers(rita_user, request, mentions.usernames(body))
        assert [u.username for u in readers] == ["vera"]  # stan cannot read; rita wrote it
    thread = _comment(rita, mr, body)
    assert _notified(app, "mentioned") == ["vera"]
    html = thread["comments"][0]["html"]
    link = re.search(r'<a class="mention" href="([^"]*author=vera\b[^"]*)"[^>]*>@vera</a>', html)
    assert link and rita.get(link.group(1).replace("&amp;", "&")).status_code == 200
    assert re.search(r'<a class="mention"[^>]*>@stan</a>', html)  # a known name links...
    assert "@nobody" in html and ">@nobody<" not in html  # ...an unknown one does not
    assert "<code>@rex</code>" in html
    # Editing in a new mention notifies only the newcomer.
    comment_id = thread["comments"][0]["id"]
    rita.submit(f"{mr.base}/comments/{comment_id}/edit", {"body": body + " @rex"}, page=mr.base)
    assert _notified(app, "mentioned") == ["vera", "rex"]


def test_markdown_in_comments_is_sanitized(app: Flask, accounts, mr: Setup) -> None:
    rita = _login(app, accounts, "rita")
    body = (
        "**bold** <script>alert(1)</script> [x](javascript:alert(2)) "
        '<img src=x onerror="alert(3)"> @rita<script>alert(4)</script>'
    )
    thread = _comment(rita, mr, body, path="document.md", side="new", line_start=3)
    page = rita.get(mr.base).get_data(as_text=True)
    for html in (thread["comments"][0]["html"], thread["html"], page):
        assert "<strong>bold</strong>" in html
        assert "<script>alert" not in html
        assert 'href="javascript:' not in html
        assert not re.search(r"<img[^>]*onerror", html)
    # The raw HTML is shown as text, not dropped silently.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in thread["comments"][0]["html"]


# --- every route through the permission module ------------------------------------------------


def test_every_route_checks_permissions(app: Flask, accounts, mr: Setup) -> None:
    rita = _login(app, accounts, "rita")
    thread = _comment(rita, mr, "A thread")
    comment_id = thread["comments"][0]["id"]
    with app.app_context():
        rita_id = get_user_by_username("rita").id
    t = f"{mr.base}/threads/{thread['id']}"
    # (method, url, form, least role among viewer/reviewer/editor that may do it)
    routes = [
        ("GET", f"{mr.base}/threads.json", None, "viewer"),
        ("GET", f"{mr.base}/comment?path=document.md&side=new&line=3", None, "reviewer"),
        ("POST", f"{mr.base}/threads", {"body": "hi"}, "reviewer"),
        ("POST", f"{t}/replies", {"body": "hi"}, "reviewer"),
        ("POST", f"{t}/resolve", {}, "reviewer"),
        ("POST", f"{t}/unresolve", {}, "reviewer"),
        ("POST", f"{mr.base}/reviews", {"verdict": "approve"}, "reviewer"),
        ("POST", f"{mr.base}/reviewers", {"username": "rex"}, "editor"),
        ("POST", f"{mr.base}/reviewers/{rita_id}/remove", {}, "editor"),
        ("GET", f"{mr.base}/comments/{comment_id}/edit", None, "author"),
        ("POST", f"{mr.base}/comments/{comment_id}/edit", {"body": "x"}, "author"),
    ]
    rank = {"viewer": 1, "reviewer": 2, "editor": 3, "author": 9}
    players = {"vera": 1, "rex": 2, "eddie": 3}
    anonymous = app.test_client()
    stan = _login(app, accounts, "stan")
    clients = {name: _login(app, accounts, name) for name in players}
    token = rita.csrf_token(mr.base)
    for method, url, form, least in routes:
        for name, client in (("anonymous", anonymous), ("stan", stan), *clients.items()):
            if method == "POST":
                page_token = (
                    client.csrf_token(mr.base) if name not in ("anonymous", "stan") else token
                )
                response = client.post(url, data={**(form or {}), "csrf_token": page_token})
            else:
                response = client.get(url)
            status = response.status_code
            where = f"{method} {url} as {name}"
            if name == "anonymous":
                assert status in (302, 400, 404), where  # to the login page (or no CSRF session)
                if status == 302:
                    assert "/login" in response.headers["Location"], where
            elif name == "stan":
                assert status in (400, 404), where  # never 403: the document does not exist for him
            elif players[name] >= rank[least]:
                assert status in (200, 201, 302), f"{where}: {status}"
            else:
                assert status == 403, f"{where}: {status}"
    # Unknown threads and comments of this request are 404, not 500.
    assert (
        rita.post(f"{mr.base}/threads/99999/resolve", data={"csrf_token": token}).status_code == 404
    )
    assert rita.get(f"{mr.base}/comments/99999/edit").status_code == 404
    assert rita.get(f"/d/{mr.slug}/merge-requests/999/threads.json").status_code == 404


def test_public_document_anonymous_reads_but_cannot_comment(
    app: Flask, accounts, mr: Setup
) -> None:
    from app.documents.services import set_visibility

    with app.app_context():
        set_visibility(get_user_by_username("olga"), get_document(mr.slug), "public")
    anonymous = app.test_client()
    assert anonymous.get(mr.base + "/threads.json").status_code == 200
    response = anonymous.post(mr.base + "/threads", data={"body": "spam"})
    assert response.status_code in (302, 400)
    stan = _login(app, accounts, "stan")  # signed in, no role: a public viewer
    assert stan.submit(mr.base + "/threads", {"body": "spam"}, page=mr.base).status_code == 403
    with app.app_context():
        assert db.session().scalars(select(ReviewThread)).all() == []


def test_review_script_reaches_every_merge_request_page_once(
    app: Flask, accounts, mr: Setup
) -> None:
    rita = _login(app, accounts, "rita")
    # No thread yet: the changes tab includes no review partial, the script comes anyway.
    for url in (mr.base + "/changes", mr.base):
        assert rita.get(url).get_data(as_text=True).count("js/review.js") == 1, url
    thread = _comment(
        rita, mr, "Hi", path="document.md", side="new", line_start=3, next=mr.base + "/changes"
    )
    changes = rita.get(mr.base + "/changes").get_data(as_text=True)
    assert changes.count("js/review.js") == 1 and f'id="thread-{thread["id"]}"' in changes
    # The thread sent back to the script sends its own forms back to the page it is on.
    assert f'name="next" value="{mr.base}/changes"' in thread["html"]
    # A page that is not about merge requests gets nothing.
    assert "js/review.js" not in rita.get(f"/d/{mr.slug}").get_data(as_text=True)


def test_mention_parsing_follows_the_username_rules() -> None:
    text = (
        "@ann-lee, (@bob) @c_d. @-x @x- @eve_ a@b.com @"
        + "z" * 41
        + "\n\n```\n@fenced\n```\n\n[@linked](https://example.com) `@code` **@bold**"
    )
    assert mentions.usernames(text) == ["ann-lee", "bob", "c_d", "x", "bold"]
