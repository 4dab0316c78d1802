"""Routes of the review conversation: threads, replies, resolutions, verdicts, reviewers.

Every route is a form POST that redirects back to the page it came from, so the review
works without JavaScript; ``static/js/review.js`` sends the same forms with
``Accept: application/json`` and gets the rendered thread back instead of a redirect.
Routes stay thin: load (404 without read access), one service call, map
:class:`~app.mergerequests.reviews.ReviewError` to a message.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    render_template_string,
    request,
    url_for,
)
from markupsafe import Markup
from sqlalchemy import select

from app import db
from app.accounts.services import get_user_by_username
from app.accounts.views import login_required
from app.auth.permissions import Action, Grant, PermissionDenied, grant_for, require
from app.documents.models import Document
from app.mergerequests import mentions, reviews
from app.mergerequests.models import MergeRequest, MergeRequestEvent, ReviewThread

bp = Blueprint("reviews", __name__)

PREFIX = "/d/<slug>/merge-requests/<int:number>"
#: Form values of the verdict buttons, and the verdict each stands for.
VERDICT_VALUES = {
    "approve": "approved",
    "approved": "approved",
    "request_changes": "changes_requested",
    "changes_requested": "changes_requested",
}


# --- loading -------------------------------------------------------------------------


def _load(slug: str, number: int, action: Action = Action.READ) -> tuple[Document, MergeRequest]:
    """The document and its merge request, or 404 (also without read access)."""
    from app.documents.services import resolve_slug

    document = resolve_slug(slug)
    if document is None:
        abort(404)
    g.grant = require(g.actor, action, document)
    mr = db.session().scalar(
        select(MergeRequest).where(
            MergeRequest.document_id == document.id, MergeRequest.number == number
        )
    )
    if mr is None:
        abort(404)
    g.document = document
    return document, mr


def _thread_or_404(mr: MergeRequest, thread_id: int) -> ReviewThread:
    thread = reviews.get_thread(mr, thread_id)
    if thread is None:
        abort(404)
    return thread


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return (
        best == "application/json"
        and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]
    )


def _next_page(mr: MergeRequest) -> str:
    """``next`` when it is a page of this merge request (never elsewhere), else its overview."""
    base = reviews.mr_url(mr)
    target = request.form.get("next", "") or request.args.get("next", "")
    inside = target == base or target.startswith((base + "/", base + "?"))
    if not inside or ".." in target or "\\" in target:
        target = base
    return target.split("#", 1)[0]


def _back(mr: MergeRequest, anchor: str = "") -> Any:
    return redirect(_next_page(mr) + (f"#{anchor}" if anchor else ""))


def _error(mr: MergeRequest, message: str, status: int = 400) -> Any:
    if _wants_json():
        return jsonify({"error": {"code": "invalid", "message": message}}), status
    flash(message, "error")
    return _back(mr)


def _thread_html(mr: MergeRequest, document: Document, thread: ReviewThread) -> str:
    return render_template(
        "mergerequests/_thread.html",
        thread=thread,
        mr=mr,
        document=document,
        grant=g.grant,
        keep_open=True,
        here=_next_page(mr),
    )


_STANDALONE = """{% extends "base.html" %}
{% block title %}{{ title }} · !{{ mr.number }} · {{ document.title }}{% endblock %}
{% block content %}{% include "mergerequests/_general_comments.html" %}{% endblock %}"""


def _standalone(**context: Any) -> str:
    """A page of its own around the comment forms, for browsers without JavaScript."""
    return render_template_string(_STANDALONE, standalone=True, **context)


def _int(name: str) -> int | None:
    raw = request.form.get(name, "") or request.args.get(name, "")
    try:
        return int(raw) if raw.strip() else None
    except ValueError:
        abort(400, f"{name} must be a number")


# --- threads and comments --------------------------------------------------------------


@bp.get(PREFIX + "/comment")
def comment_form(slug: str, number: int):
    """The page a "comment on this line" link leads to when JavaScript is off."""
    login_required()
    document, mr = _load(slug, number, Action.COMMENT)
    path = request.args.get("path", "")
    side = request.args.get("side", "new")
    line_start = _int("line")
    line_end = _int("line_end") or line_start
    lines = None
    if path and side in reviews.SIDES and line_start:
        lines = reviews.lines_of(mr, path, side, line_start, line_end or line_start)
    return _standalone(
        title="Comment",
        mr=mr,
        document=document,
        grant=g.grant,
        path=path,
        side=side,
        line_start=line_start,
        line_end=line_end,
        lines=lines,
        next=request.args.get("next", ""),
    )


@bp.post(PREFIX + "/threads")
def create_thread(slug: str, number: int):
    login_required()
    document, mr = _load(slug, number)
    form = request.form
    path = form.get("path", "").strip() or None
    try:
        thread = reviews.start_thread(
            g.actor,
            mr,
            form.get("body", ""),
            path=path,
            side=(form.get("side") or None) if path else None,
            line_start=_int("line_start") if path else None,
            line_end=_int("line_end") if path else None,
        )
    except reviews.ReviewError as exc:
        return _error(mr, str(exc))
    if _wants_json():
        return jsonify(_thread_json(mr, document, thread)), 201
    flash("Comment added.", "success")
    return _back(mr, f"thread-{thread.id}")


@bp.post(PREFIX + "/threads/<int:thread_id>/replies")
def reply(slug: str, number: int, thread_id: int):
    login_required()
    document, mr = _load(slug, number)
    thread = _thread_or_404(mr, thread_id)
    try:
        reviews.reply(g.actor, mr, thread, request.form.get("body", ""))
    except reviews.ReviewError as exc:
        return _error(mr, str(exc))
    if _wants_json():
        return jsonify(_thread_json(mr, document, thread)), 201
    return _back(mr, f"thread-{thread.id}")


@bp.post(PREFIX + "/threads/<int:thread_id>/resolve")
def resolve(slug: str, number: int, thread_id: int):
    return _set_resolved(slug, number, thread_id, True)


@bp.post(PREFIX + "/threads/<int:thread_id>/unresolve")
def unresolve(slug: str, number: int, thread_id: int):
    return _set_resolved(slug, number, thread_id, False)


def _set_resolved(slug: str, number: int, thread_id: int, resolved: bool):
    login_required()
    document, mr = _load(slug, number)
    thread = _thread_or_404(mr, thread_id)
    reviews.set_resolved(g.actor, mr, thread, resolved)
    if _wants_json():
        return jsonify(_thread_json(mr, document, thread))
    return _back(mr, f"thread-{thread.id}")


@bp.route(PREFIX + "/comments/<int:comment_id>/edit", methods=["GET", "POST"])
def edit_comment(slug: str, number: int, comment_id: int):
    login_required()
    document, mr = _load(slug, number)
    comment = reviews.get_comment(mr, comment_id)
    if comment is None:
        abort(404)
    if comment.author_id != g.actor.id or not g.grant.allows(Action.COMMENT):
        raise PermissionDenied(Action.COMMENT, hide=False)
    if request.method == "GET":
        return _standalone(
            title="Edit comment",
            editing=comment,
            mr=mr,
            document=document,
            grant=g.grant,
            next=request.args.get("next", ""),
        )
    try:
        reviews.edit_comment(g.actor, mr, comment, request.form.get("body", ""))
    except reviews.ReviewError as exc:
        return _error(mr, str(exc))
    if _wants_json():
        return jsonify(_thread_json(mr, document, comment.thread))
    return _back(mr, f"comment-{comment.id}")


@bp.get(PREFIX + "/threads.json")
def threads_json(slug: str, number: int):
    """Every thread of the request, for the script (current, outdated and general)."""
    document, mr = _load(slug, number)
    state = reviews.conversation(mr)
    return jsonify(
        {
            "threads": [
                _thread_json(mr, document, t, html=False)
                for t in state.general + state.current + state.outdated
            ],
            "unresolved": state.unresolved,
            "approvals": state.approvals,
            "changes_requested": state.changes_requested,
        }
    )


def _thread_json(
    mr: MergeRequest, document: Document, thread: ReviewThread, *, html: bool = True
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": thread.id,
        "path": thread.path,
        "side": thread.side,
        "line_start": thread.line_start,
        "line_end": thread.line_end,
        "outdated": thread.outdated,
        "resolved": thread.resolved,
        "comments": [
            {
                "id": c.id,
                "author": c.author.username,
                "body": c.body,
                "html": str(render_comment(c.body, document)),
                "created_at": c.created_at.isoformat(),
                "edited_at": c.edited_at.isoformat() if c.edited_at else None,
            }
            for c in thread.comments
        ],
        "unresolved": reviews.unresolved_count(mr),
    }
    if html:
        data["html"] = _thread_html(mr, document, thread)
    return data


# --- verdicts and reviewers ---------------------------------------------------------------


@bp.post(PREFIX + "/reviews")
def submit_review(slug: str, number: int):
    login_required()
    _, mr = _load(slug, number)
    verdict = VERDICT_VALUES.get(request.form.get("verdict", ""))
    if verdict is None:
        return _error(mr, "Choose approve or request changes.")
    try:
        reviews.submit_review(g.actor, mr, verdict, request.form.get("body", ""))
    except reviews.ReviewError as exc:
        return _error(mr, str(exc))
    if _wants_json():
        return jsonify({"verdict": verdict, "approvals": reviews.approval_count(mr)}), 201
    flash("Approved." if verdict == "approved" else "Changes requested.", "success")
    return _back(mr, "review-panel")


@bp.post(PREFIX + "/reviewers")
def add_reviewer(slug: str, number: int):
    login_required()
    _, mr = _load(slug, number)
    username = request.form.get("username", "").strip().lstrip("@")
    reviewer = get_user_by_username(username) if username else None
    if reviewer is None or not grant_for(reviewer, mr.document).allows(Action.READ):
        reviews.require_reviewer_manager(g.actor, mr)  # strangers learn nothing about users
        return _error(mr, f"No reviewer called {username!r} can see this document.")
    try:
        reviews.request_review(g.actor, mr, reviewer)
    except reviews.ReviewError as exc:
        return _error(mr, str(exc))
    return _back(mr, "review-panel")


@bp.post(PREFIX + "/reviewers/<int:user_id>/remove")
def remove_reviewer(slug: str, number: int, user_id: int):
    login_required()
    _, mr = _load(slug, number)
    reviews.remove_review_request(g.actor, mr, user_id)
    return _back(mr, "review-panel")


# --- template helpers --------------------------------------------------------------------


def render_comment(body: str, document: Document) -> Markup:
    """A comment's Markdown, sanitized, with mentions linked to the person's requests."""

    def link(user: Any) -> str:
        return url_for("mergerequests.index", slug=document.slug, author=user.username, state="all")

    return mentions.render(body, link)


def _thread_mr(thread: ReviewThread) -> MergeRequest:
    mr = db.session().get(MergeRequest, thread.merge_request_id)
    assert mr is not None
    return mr


def _grant(mr: MergeRequest) -> Grant:
    """The actor's grant on the request's document, computed once per request."""
    cache: dict[int, Grant] = g.setdefault("review_grants", {})
    if mr.document_id not in cache:
        cache[mr.document_id] = grant_for(g.get("actor"), mr.document)
    return cache[mr.document_id]


def _review_permissions(mr: MergeRequest) -> dict[str, Any]:
    actor = g.get("actor")
    grant = _grant(mr)
    is_author = actor is not None and actor.id == mr.author_id
    return {
        "signed_in": actor is not None,
        "comment": actor is not None and grant.allows(Action.COMMENT),
        "approve": actor is not None and grant.allows(Action.APPROVE) and not is_author,
        "manage_reviewers": reviews.can_manage_reviewers(actor, mr, grant),
        "is_author": is_author,
        "open": mr.state == "open",
    }


def _can_resolve(mr: MergeRequest, thread: ReviewThread) -> bool:
    return reviews.can_resolve(g.get("actor"), mr, thread, _grant(mr))


def _can_edit(comment: Any, mr: MergeRequest) -> bool:
    actor = g.get("actor")
    if actor is None or comment.author_id != actor.id:
        return False
    return _grant(mr).allows(Action.COMMENT)


def _conversation(mr: MergeRequest) -> reviews.Conversation:
    """The review state for the page; the timeline and the panel share one load."""
    cache: dict[int, reviews.Conversation] = g.setdefault("review_conversations", {})
    if mr.id not in cache:
        cache[mr.id] = reviews.conversation(mr)
    return cache[mr.id]


def _script_tag() -> Markup:
    """The review script, once per page however many partials ask for it."""
    if g.get("review_script_sent"):
        return Markup("")
    g.review_script_sent = True
    src = url_for("static", filename="js/review.js")
    return Markup(f'<script defer src="{src}"></script>')


_EVENT_TEXT = {
    "commented": "commented",
    "reviewed": "reviewed",
    "approved": "approved these changes",
    "changes_requested": "requested changes",
    "resolved": "resolved a thread",
    "unresolved": "reopened a thread",
    "review_requested": "requested a review from",
    "review_request_removed": "removed the review request for",
    "approvals_reset": "New commits dismissed earlier approvals",
    "opened": "opened this merge request",
    "pushed": "pushed new commits",
    "merged": "merged this merge request",
    "closed": "closed this merge request",
    "reopened": "reopened this merge request",
    "reverted": "reverted this merge request",
}


def _event_text(event: MergeRequestEvent) -> str:
    return _EVENT_TEXT.get(event.kind, event.kind.replace("_", " "))


def _ensure_script(response: Response) -> Response:
    """Give every merge request page the review script, even one without a review partial.

    The changes tab shows diff lines (which the script gives comment buttons) but may
    include none of the review partials when no thread exists yet. A page that already
    called :func:`_script_tag` is left alone.
    """
    if (
        g.get("review_script_sent")
        or request.blueprint != "mergerequests"
        or response.status_code != 200
        or response.mimetype != "text/html"
        or response.direct_passthrough
        or response.is_streamed
    ):
        return response
    body = response.get_data(as_text=True)
    at = body.rfind("</body>")
    if at != -1:
        response.set_data(body[:at] + str(_script_tag()) + body[at:])
    return response


def init_app(app: Flask) -> None:
    """Expose the helpers the review partials call from the merge request pages."""
    app.after_request(_ensure_script)
    app.add_template_global(render_comment, "review_markdown")
    app.add_template_global(_conversation, "review_conversation")
    app.add_template_global(_thread_mr, "review_thread_mr")
    app.add_template_global(_review_permissions, "review_permissions")
    app.add_template_global(_can_resolve, "review_can_resolve")
    app.add_template_global(_can_edit, "review_can_edit")
    app.add_template_global(_script_tag, "review_script")
    app.add_template_global(_event_text, "review_event_text")
    app.add_template_global(reviews.mr_url, "review_mr_url")
    app.add_template_global(reviews.reviewer_candidates, "review_candidates")
