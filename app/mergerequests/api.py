"""Merge requests in the JSON API under /api/v1 (bearer tokens only).

Same authentication, helpers and error mapping as :mod:`app.api.views`; the
services do the work and the permission checks. A request that cannot merge answers
409 ``{"error": {"code": "not_mergeable", "reason": <mergeability>, "message"}}``,
where ``reason`` is one of the stable mergeability values.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from app.api import errors
from app.api.openapi import BOOL, INT, NSTR, STR, TIME, _error, _json, _obj, _op, _p, _q, _ref
from app.api.views import _authenticate, actor, base_url, field, for_write, int_arg, json_body, load
from app.auth.permissions import Action
from app.documents.models import Document
from app.errors import ApiError
from app.mergerequests import services
from app.mergerequests.models import MERGE_STYLES, MERGEABILITY, STATES, MergeRequest

bp = Blueprint("mergerequests_api", __name__, url_prefix="/api/v1")
bp.before_request(_authenticate)
errors.register(bp)


@bp.errorhandler(services.MergeRequestError)
def _invalid(exc: services.MergeRequestError):
    from app.errors import error_response

    return error_response(422, str(exc), "invalid")


@bp.errorhandler(services.NotMergeable)
def _not_mergeable(exc: services.NotMergeable):
    from app.errors import error_response

    return error_response(409, exc.message, "not_mergeable", reason=exc.reason)


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def mr_json(mr: MergeRequest) -> dict[str, Any]:
    """The stable shape of one merge request."""
    document = mr.document
    return {
        "number": mr.number,
        "state": mr.state,
        "title": mr.title,
        "description": mr.description,
        "draft": mr.draft,
        "source": mr.source_branch,
        "target": mr.target_branch,
        "author": mr.author.username,
        "head": mr.head_oid,
        "base": mr.base_oid,
        "mergeable": mr.state == "open" and mr.mergeability == "mergeable",
        "mergeability": mr.mergeability if mr.state == "open" else mr.state,
        "conflicts": list(mr.conflicts or []),
        "merge_style": mr.merge_style,
        "merge_commit": mr.merge_commit,
        "merged_by": mr.merged_by.username if mr.merged_by else None,
        "merged_at": _iso(mr.merged_at),
        "closed_at": _iso(mr.closed_at),
        "created_at": _iso(mr.created_at),
        "updated_at": _iso(mr.updated_at),
        "web_url": f"{base_url()}/d/{document.slug}/merge-requests/{mr.number}",
    }


def _load_mr(slug: str, number: int, action: Action = Action.READ) -> tuple[Document, MergeRequest]:
    document, _ = load(slug, action)
    mr = services.get_merge_request(document, number)
    if mr is None:
        raise ApiError(404, "Not found.")
    return document, mr


def _flag(data: dict[str, Any], name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise ApiError(422, f"'{name}' must be true or false.", "invalid", field=name)
    return value


@bp.post("/documents/<slug>/merge-requests")
def open_request(slug: str):
    user, document = for_write(slug, Action.OPEN_MERGE_REQUEST)
    data = json_body()
    mr = services.open_merge_request(
        user,
        document,
        source=field(data, "source", required=True),
        target=field(data, "target") or document.default_branch,
        title=field(data, "title", required=True),
        description=field(data, "description"),
        draft=_flag(data, "draft"),
    )
    location = f"{base_url()}{bp.url_prefix}/documents/{document.slug}/merge-requests/{mr.number}"
    return mr_json(mr), 201, {"Location": location}


@bp.get("/documents/<slug>/merge-requests")
def list_requests(slug: str):
    document, _ = load(slug)
    state = request.args.get("state") or "open"
    if state not in (*STATES, "all"):
        raise ApiError(400, "'state' is open, merged, closed or all.", "bad_request")
    author = request.args.get("author") or None
    mine = author == "me"
    review = request.args.get("reviewer") == "me"
    if (mine or review) and actor() is None:
        raise ApiError(401, "Send a token to filter by 'me'.")
    listing = services.list_merge_requests(
        actor(),
        document,
        state=state,
        authored=mine,
        review_requested=review,
        author=None if mine else author,
        limit=int_arg("limit", 50, 1, 100),
        offset=int_arg("offset", 0, 0, None),
    )
    return {"merge_requests": [mr_json(m) for m in listing.requests], "counts": listing.counts}


@bp.get("/documents/<slug>/merge-requests/<int:number>")
def get_request(slug: str, number: int):
    _, mr = _load_mr(slug, number)
    if mr.state == "open":
        services.refresh(mr, None)  # "current": follow any head or target change first
    return mr_json(mr)


@bp.post("/documents/<slug>/merge-requests/<int:number>/merge")
def merge_request(slug: str, number: int):
    user, _ = for_write(slug, Action.MERGE)
    _, mr = _load_mr(slug, number, Action.MERGE)
    data = json_body() if request.get_data() else {}
    style = field(data, "style") or None
    if style is not None and style not in MERGE_STYLES:
        raise ApiError(422, "'style' is merge, squash or ff.", "invalid", field="style")
    resolutions = data.get("resolutions") or {}
    if not isinstance(resolutions, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in resolutions.items()
    ):
        raise ApiError(
            422, "'resolutions' maps paths to their final text.", "invalid", field="resolutions"
        )
    commit = services.merge(
        user,
        mr,
        style=style,
        delete_source=_flag(data, "delete_source"),
        resolutions=resolutions,
        expected_head=field(data, "head") or None,
        source="api",
    )
    return {"commit": commit, "merge_request": mr_json(mr)}


@bp.post("/documents/<slug>/merge-requests/<int:number>/close")
def close_request(slug: str, number: int):
    user, _ = for_write(slug, Action.READ)
    _, mr = _load_mr(slug, number)
    return mr_json(services.close(user, mr))


@bp.post("/documents/<slug>/merge-requests/<int:number>/reopen")
def reopen_request(slug: str, number: int):
    user, _ = for_write(slug, Action.READ)
    _, mr = _load_mr(slug, number)
    return mr_json(services.reopen(user, mr))


# --- OpenAPI ----------------------------------------------------------------------------

_MR = "MergeRequest"
_ERR_401 = _error("No token, or an invalid, expired or revoked token.")
_ERR_403 = _error("The caller may read the document but not do this.")
_ERR_404 = _error("No such document or merge request, or the caller may not read it.")
_ERR_422 = _error("The body failed validation (code invalid).")
_NUMBER = {**_p("number", "The request's number within the document."), "schema": INT}
_SLUG = _p("slug", "The document's slug.")
_NOT_MERGEABLE = {
    "description": "Cannot merge now (code not_mergeable); 'reason' says why.",
    "content": {
        "application/json": {
            "schema": _obj(
                {
                    "error": _obj(
                        {
                            "code": {"const": "not_mergeable"},
                            "reason": {
                                "enum": [*MERGEABILITY, "merged", "closed", "missing_branch"]
                            },
                            "message": STR,
                        }
                    )
                }
            )
        }
    },
}

_SCHEMAS = {
    _MR: _obj(
        {
            "number": INT,
            "state": {"enum": list(STATES)},
            "title": STR,
            "description": STR,
            "draft": BOOL,
            "source": STR,
            "target": STR,
            "author": STR,
            "head": {**STR, "description": "The reviewed head (refs/merge-requests/<n>/head)."},
            "base": NSTR,
            "mergeable": BOOL,
            "mergeability": {
                "enum": [*MERGEABILITY, "merged", "closed"],
                "description": "Why it can or cannot merge, checked in this order: draft, "
                "up_to_date, conflicts, needs_approvals, unresolved_threads, behind.",
            },
            "conflicts": {
                "type": "array",
                "items": STR,
                "description": "Paths still conflicting after the prose-aware merge.",
            },
            "merge_style": {"type": ["string", "null"], "enum": [*MERGE_STYLES, None]},
            "merge_commit": NSTR,
            "merged_by": NSTR,
            "merged_at": {"type": ["string", "null"], "format": "date-time"},
            "closed_at": {"type": ["string", "null"], "format": "date-time"},
            "created_at": TIME,
            "updated_at": TIME,
            "web_url": STR,
        }
    )
}

_PATHS = {
    "/documents/{slug}/merge-requests": {
        "get": _op(
            "Merge requests of a document, newest first",
            {
                "200": _json(
                    _obj(
                        {
                            "merge_requests": {"type": "array", "items": _ref(_MR)},
                            "counts": _obj({s: INT for s in STATES}),
                        }
                    ),
                    "A page of requests and the count per state (same filters).",
                ),
                "400": _error("A malformed query parameter."),
                "401": _ERR_401,
                "404": _ERR_404,
            },
            params=[
                _SLUG,
                _q(
                    "state", "open (default), merged, closed or all.", {"enum": [*STATES, "all"]}
                ),  # fmt: skip
                _q("author", "'me' for the caller's own requests, or a username."),
                _q(
                    "reviewer",
                    "'me': only requests awaiting the caller's review.",
                    {"enum": ["me"]},
                ),  # fmt: skip
                _q("limit", "1..100, default 50.", {"type": "integer", "minimum": 1}),
                _q("offset", "Default 0.", {"type": "integer", "minimum": 0}),
            ],
        ),
        "post": _op(
            "Open a merge request",
            {
                "201": _json(_ref(_MR), "Opened; mergeability already computed."),
                "401": _ERR_401,
                "403": _ERR_403,
                "404": _ERR_404,
                "415": _error("Not JSON."),
                "422": _error("Unknown or equal branches, or a missing title (code invalid)."),
            },
            params=[_SLUG],
            body=_obj(
                {
                    "source": STR,
                    "target": {**STR, "description": "Defaults to the default branch."},
                    "title": STR,
                    "description": {**STR, "description": "Markdown."},
                    "draft": BOOL,
                },
                ["source", "title"],
            ),
            auth=True,
        ),
    },
    "/documents/{slug}/merge-requests/{number}": {
        "get": _op(
            "One merge request, refreshed (head and mergeability are current)",
            {"200": _json(_ref(_MR), "The request."), "401": _ERR_401, "404": _ERR_404},
            params=[_SLUG, _NUMBER],
        )
    },
    "/documents/{slug}/merge-requests/{number}/merge": {
        "post": _op(
            "Merge",
            {
                "200": _json(
                    _obj({"commit": STR, "merge_request": _ref(_MR)}),
                    "Merged; commit is the target branch's new head.",
                ),
                "401": _ERR_401,
                "403": _ERR_403,
                "404": _ERR_404,
                "409": _NOT_MERGEABLE,
                "422": _ERR_422,
            },
            params=[_SLUG, _NUMBER],
            body=_obj(
                {
                    "style": {
                        "enum": list(MERGE_STYLES),
                        "description": "Defaults to the document's default style.",
                    },
                    "delete_source": BOOL,
                    "resolutions": {
                        "type": "object",
                        "additionalProperties": STR,
                        "description": "Final text for each conflicted path (merge style only).",
                    },
                    "head": {**STR, "description": "Merge only if this is still the head."},
                },
                [],
            ),  # fmt: skip
            auth=True,
        )
    },
    "/documents/{slug}/merge-requests/{number}/close": {
        "post": _op(
            "Close without merging (authors may close their own)",
            {
                "200": _json(_ref(_MR), "Closed."),
                "401": _ERR_401,
                "403": _ERR_403,
                "404": _ERR_404,
                "422": _error("Not open (code invalid)."),
            },
            params=[_SLUG, _NUMBER],
            auth=True,
        )
    },
    "/documents/{slug}/merge-requests/{number}/reopen": {
        "post": _op(
            "Reopen a closed request",
            {
                "200": _json(_ref(_MR), "Open again, refreshed."),
                "401": _ERR_401,
                "403": _ERR_403,
                "404": _ERR_404,
                "422": _error("Not closed, or a branch is gone (code invalid)."),
            },
            params=[_SLUG, _NUMBER],
            auth=True,
        )
    },
}


def _describe() -> None:
    from app.api.openapi import extend

    extend(_PATHS, _SCHEMAS)


_describe()
