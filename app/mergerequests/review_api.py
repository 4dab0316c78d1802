"""The review conversation in the JSON API: comments, replies, resolving, verdicts.

Registered on the merge request API blueprint (same bearer-token authentication and
error mapping); :mod:`app.mergerequests.reviews` does the work and every permission
check, so the pages and the API cannot disagree about who may comment or approve.
"""

from __future__ import annotations

from typing import Any

from app.accounts.services import get_user_by_username
from app.api.openapi import BOOL, INT, NSTR, STR, TIME, _error, _json, _obj, _op, _p, extend
from app.api.views import field, for_write, json_body
from app.auth.permissions import Action
from app.errors import ApiError, error_response
from app.mergerequests import reviews
from app.mergerequests.api import _load_mr, bp, mr_json
from app.mergerequests.models import Review, ReviewComment, ReviewThread

#: The API's verdict words, and the stored ones they mean.
_VERDICTS = {"approve": "approved", "request_changes": "changes_requested"}


@bp.errorhandler(reviews.ReviewError)
def _review_error(exc: reviews.ReviewError):
    return error_response(422, str(exc), "invalid")


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def comment_json(comment: ReviewComment) -> dict[str, Any]:
    return {
        "id": comment.id,
        "author": comment.author.username,
        "body": comment.body,
        "created_at": _iso(comment.created_at),
        "edited_at": _iso(comment.edited_at),
    }


def thread_json(thread: ReviewThread) -> dict[str, Any]:
    return {
        "id": thread.id,
        "path": thread.path,
        "side": thread.side,
        "line_start": thread.line_start,
        "line_end": thread.line_end,
        "commit": thread.commit_oid,
        "outdated": thread.outdated,
        "resolved": thread.resolved,
        "comments": [comment_json(c) for c in thread.comments],
    }


def review_json(review: Review) -> dict[str, Any]:
    return {
        "id": review.id,
        "reviewer": review.reviewer.username,
        "verdict": review.verdict,
        "commit": review.commit_oid,
        "body": review.body,
        "dismissed": review.dismissed,
        "created_at": _iso(review.created_at),
    }


def _line(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiError(422, f"'{name}' must be a line number.", "invalid", field=name)
    return value


def _thread(mr, thread_id: int) -> ReviewThread:  # noqa: ANN001
    thread = reviews.get_thread(mr, thread_id)
    if thread is None:
        raise ApiError(404, "Not found.")
    return thread


@bp.get("/documents/<slug>/merge-requests/<int:number>/comments")
def list_comments(slug: str, number: int):
    _, mr = _load_mr(slug, number)
    talk = reviews.conversation(mr)
    return {
        "threads": [thread_json(t) for t in (*talk.general, *talk.current, *talk.outdated)],
        "reviews": [review_json(r) for r in talk.reviews],
        "approvals": talk.approvals,
        "changes_requested": talk.changes_requested,
        "unresolved": talk.unresolved,
    }


@bp.post("/documents/<slug>/merge-requests/<int:number>/comments")
def comment(slug: str, number: int):
    """A general comment, a comment on a line or range, or (with ``thread``) a reply."""
    user, _ = for_write(slug, Action.COMMENT)
    _, mr = _load_mr(slug, number, Action.COMMENT)
    data = json_body()
    body = field(data, "body", required=True)
    thread_id = _line(data, "thread")
    if thread_id is not None:
        thread = _thread(mr, thread_id)
        reviews.reply(user, mr, thread, body)
        return thread_json(_thread(mr, thread_id)), 201
    path = field(data, "path") or None
    line = _line(data, "line")
    if path is not None and line is None:
        raise ApiError(422, "A comment on a file needs 'line'.", "invalid", field="line")
    thread = reviews.start_thread(
        user,
        mr,
        body,
        path=path,
        side=field(data, "side", default="new") if path else None,
        line_start=line,
        line_end=_line(data, "line_end"),
    )
    return thread_json(thread), 201


@bp.post("/documents/<slug>/merge-requests/<int:number>/comments/<int:thread_id>/resolve")
def resolve(slug: str, number: int, thread_id: int):
    user, _ = for_write(slug, Action.READ)
    _, mr = _load_mr(slug, number)
    data = json_body() if _has_body() else {}
    resolved = data.get("resolved", True)
    if not isinstance(resolved, bool):
        raise ApiError(422, "'resolved' must be true or false.", "invalid", field="resolved")
    thread = _thread(mr, thread_id)
    reviews.set_resolved(user, mr, thread, resolved)
    return thread_json(thread)


@bp.post("/documents/<slug>/merge-requests/<int:number>/reviews")
def review(slug: str, number: int):
    """Approve or request changes on the current head."""
    user, _ = for_write(slug, Action.APPROVE)
    _, mr = _load_mr(slug, number, Action.APPROVE)
    data = json_body()
    verdict = _VERDICTS.get(field(data, "verdict", required=True))
    if verdict is None:
        raise ApiError(422, "'verdict' is approve or request_changes.", "invalid", field="verdict")
    made = reviews.submit_review(user, mr, verdict, field(data, "body"))
    return {"review": review_json(made), "merge_request": mr_json(mr)}, 201


@bp.post("/documents/<slug>/merge-requests/<int:number>/approve")
def approve(slug: str, number: int):
    """Shorthand for a review with the verdict ``approve``."""
    user, _ = for_write(slug, Action.APPROVE)
    _, mr = _load_mr(slug, number, Action.APPROVE)
    data = json_body() if _has_body() else {}
    made = reviews.submit_review(user, mr, "approved", field(data, "body"))
    return {"review": review_json(made), "merge_request": mr_json(mr)}, 201


@bp.post("/documents/<slug>/merge-requests/<int:number>/reviewers")
def request_reviewer(slug: str, number: int):
    user, _ = for_write(slug, Action.READ)
    _, mr = _load_mr(slug, number)
    username = field(json_body(), "username", required=True)
    reviewer = get_user_by_username(username)
    if reviewer is None:
        raise ApiError(422, f"No user named {username!r}.", "invalid", field="username")
    reviews.request_review(user, mr, reviewer)
    return {"reviewers": [r.reviewer.username for r in reviews.requested_reviewers(mr)]}, 201


def _has_body() -> bool:
    from flask import request

    return bool(request.get_data())


# --- OpenAPI ------------------------------------------------------------------------

_SLUG = _p("slug", "The document's slug.")
_NUMBER = {**_p("number", "The request's number within the document."), "schema": INT}
_THREAD_ID = {**_p("thread_id", "The thread's id."), "schema": INT}
_ERRORS = {
    "401": _error("No token, or an invalid, expired or revoked token."),
    "403": _error("The caller may read the document but not do this."),
    "404": _error("No such document, merge request or thread, or the caller may not read it."),
    "422": _error("The body failed validation, or the request is not open (code invalid)."),
}
_COMMENT = _obj(
    {"id": INT, "author": STR, "body": STR, "created_at": TIME, "edited_at": NSTR}
)  # fmt: skip
_THREAD = _obj(
    {
        "id": INT,
        "path": NSTR,
        "side": {"type": ["string", "null"], "enum": ["old", "new", None]},
        "line_start": {"type": ["integer", "null"]},
        "line_end": {"type": ["integer", "null"]},
        "commit": NSTR,
        "outdated": BOOL,
        "resolved": BOOL,
        "comments": {"type": "array", "items": {"$ref": "#/components/schemas/ReviewComment"}},
    }
)
_REVIEW = _obj(
    {
        "id": INT,
        "reviewer": STR,
        "verdict": {"enum": ["approved", "changes_requested"]},
        "commit": STR,
        "body": STR,
        "dismissed": BOOL,
        "created_at": TIME,
    }
)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_REVIEWED = _json(
    _obj({"review": _ref("Review"), "merge_request": _ref("MergeRequest")}),
    "Recorded; the request's mergeability is recomputed.",
)
extend(
    {
        "/documents/{slug}/merge-requests/{number}/comments": {
            "get": _op(
                "The review conversation: threads, verdicts, counts",
                {
                    "200": _json(
                        _obj(
                            {
                                "threads": {"type": "array", "items": _ref("ReviewThread")},
                                "reviews": {"type": "array", "items": _ref("Review")},
                                "approvals": INT,
                                "changes_requested": BOOL,
                                "unresolved": INT,
                            }
                        ),
                        "Every thread (general, current, outdated) and every verdict.",
                    ),
                    "401": _ERRORS["401"],
                    "404": _ERRORS["404"],
                },
                params=[_SLUG, _NUMBER],
            ),
            "post": _op(
                "Comment: general, on a line or range of the diff, or a reply",
                {
                    "201": _json(_ref("ReviewThread"), "The thread, with the new comment."),
                    **_ERRORS,
                },  # fmt: skip
                params=[_SLUG, _NUMBER],
                body=_obj(
                    {
                        "body": {**STR, "description": "Markdown; @username mentions notify."},
                        "path": {**STR, "description": "A file of the diff (omit: general)."},
                        "side": {"enum": ["old", "new"], "description": "Default new."},
                        "line": {**INT, "description": "First line (1-based) on that side."},
                        "line_end": {**INT, "description": "Last line of a range."},
                        "thread": {**INT, "description": "Reply to this thread instead."},
                    },
                    ["body"],
                ),
                auth=True,
            ),
        },
        "/documents/{slug}/merge-requests/{number}/comments/{thread_id}/resolve": {
            "post": _op(
                'Resolve a thread, or reopen it with {"resolved": false}',
                {"200": _json(_ref("ReviewThread"), "The thread."), **_ERRORS},
                params=[_SLUG, _NUMBER, _THREAD_ID],
                body=_obj({"resolved": BOOL}, []),
                auth=True,
            )
        },
        "/documents/{slug}/merge-requests/{number}/reviews": {
            "post": _op(
                "Approve or request changes on the current head",
                {"201": _REVIEWED, **_ERRORS},
                params=[_SLUG, _NUMBER],
                body=_obj(
                    {"verdict": {"enum": list(_VERDICTS)}, "body": STR}, ["verdict"]
                ),  # fmt: skip
                auth=True,
            )
        },
        "/documents/{slug}/merge-requests/{number}/approve": {
            "post": _op(
                "Approve the current head (authors cannot approve their own)",
                {"201": _REVIEWED, **_ERRORS},
                params=[_SLUG, _NUMBER],
                body=_obj({"body": STR}, []),
                auth=True,
            )
        },
        "/documents/{slug}/merge-requests/{number}/reviewers": {
            "post": _op(
                "Request a review from a user (reviewer role or above)",
                {
                    "201": _json(
                        _obj({"reviewers": {"type": "array", "items": STR}}),
                        "Everyone whose review is requested.",
                    ),
                    **_ERRORS,
                },
                params=[_SLUG, _NUMBER],
                body=_obj({"username": STR}),
                auth=True,
            )
        },
    },
    {"ReviewComment": _COMMENT, "ReviewThread": _THREAD, "Review": _REVIEW},
)
