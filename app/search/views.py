"""``GET /search`` (the page), ``GET /api/v1/search`` (JSON, bearer token only) and
``GET /d/<slug>/history/search`` (a phrase through one document's history).

Views parse and bound the input, call one service and map its errors to a 400;
the permission rule lives inside :func:`app.search.index.search`'s query.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, abort, g, render_template, request, url_for
from werkzeug.datastructures import MultiDict

import gitstore
from app.api import openapi
from app.auth.permissions import Action
from app.documents.models import Document
from app.documents.views import document_view
from app.errors import ApiError
from app.search.history import BadPhrase, search_history
from app.search.index import MAX_LIMIT, TOTAL_CAP, Filters, InvalidCursor, Results, search

bp = Blueprint("search", __name__)


class BadInput(ValueError):
    """A query parameter that cannot be understood; the message says which."""


def _limit(args: MultiDict[str, str], default: int) -> int:
    raw = args.get("limit")
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadInput("'limit' must be an integer.") from None
    if not 1 <= value <= MAX_LIMIT:
        raise BadInput(f"'limit' must be between 1 and {MAX_LIMIT}.")
    return value


def _filters(args: MultiDict[str, str]) -> Filters:
    since = None
    raw = (args.get("since") or "").strip()
    if raw:
        try:
            since = date.fromisoformat(raw)
        except ValueError:
            raise BadInput("'since' must be a date, YYYY-MM-DD.") from None
    member = (args.get("member") or "").strip().lstrip("@") or None
    if member is not None and len(member) > 80:
        raise BadInput("'member' is too long.")
    mine = (args.get("mine") or "").lower() in {"1", "true", "on", "yes"}
    return Filters(mine=mine, member=member, since=since)


def _run(actor: Any, args: MultiDict[str, str], default_limit: int) -> tuple[str, Filters, Results]:
    q = (args.get("q") or "").strip()
    filters = _filters(args)
    limit = _limit(args, default_limit)
    try:
        results = search(actor, q, limit, args.get("cursor") or None, filters)
    except InvalidCursor as exc:
        raise BadInput(str(exc)) from None
    return q, filters, results


@bp.get("/search")
def page():
    actor = g.get("actor")
    q = (request.args.get("q") or "").strip()
    filters, results, error = Filters(), None, None
    try:
        if q:
            q, filters, results = _run(actor, request.args, 20)
        else:
            filters = _filters(request.args)
    except BadInput as exc:
        error = str(exc)
    status = 400 if error else 200
    return render_template(
        "search/index.html", q=q, filters=filters, results=results, error=error
    ), status


@bp.get("/api/v1/search")
def api():
    if g.get("via_token") and g.get("actor") is None:
        raise ApiError(401, "The token is invalid, expired or revoked.", "unauthorized")
    actor = g.get("actor") if g.get("via_token") else None  # cookies are ignored here
    try:
        q, _, results = _run(actor, request.args, 30)
    except BadInput as exc:
        raise ApiError(400, str(exc), "bad_request") from None
    return {
        "query": q,
        "total": results.total,
        "total_is_lower_bound": results.total_is_lower_bound,
        "reachable": results.total if results.reachable is None else results.reachable,
        "next_cursor": results.next_cursor,
        "results": [
            {
                "slug": hit.document.slug,
                "title": hit.document.title,
                "url": url_for("documents.show", slug=hit.document.slug, _external=True),
                "score": hit.score,
                "title_match": hit.title_match,
                "path": hit.path,
                "heading": hit.heading,
                "snippet": str(hit.snippet),
                "updated_at": hit.document.updated_at.isoformat(),
            }
            for hit in results.hits
        ],
    }


@bp.get("/d/<slug>/history/search")
@document_view(Action.READ)
def history(document: Document):
    phrase = (request.args.get("s") or "").strip()
    ref = request.args.get("ref") or document.default_branch
    page, error = None, None
    if phrase:
        try:
            page = search_history(document, phrase, ref=ref, after=request.args.get("after"))
        except BadPhrase as exc:
            error = str(exc)
        except (gitstore.RefNotFound, gitstore.InvalidRefName):
            abort(404)
    return render_template(
        "search/history.html", document=document, phrase=phrase, ref=ref, page=page, error=error
    ), (400 if error else 200)


# --- OpenAPI ------------------------------------------------------------------------

_HIT = openapi._obj(  # noqa: SLF001 - the shared helpers of the description
    {
        "slug": openapi.STR,
        "title": openapi.STR,
        "url": openapi.STR,
        "score": {"type": "number", "description": "Relevance within this query; higher first."},
        "title_match": {**openapi.BOOL, "description": "Title matches rank above the rest."},
        "path": {**openapi.NSTR, "description": "The file the highlighted passage is in."},
        "heading": {**openapi.NSTR, "description": "The Markdown heading it sits under."},
        "snippet": {
            **openapi.STR,
            "description": "HTML-escaped text around the hit; matches wrapped in <mark>.",
        },
        "updated_at": openapi.TIME,
    }
)

openapi.extend(
    {
        "/search": {
            "get": openapi._op(  # noqa: SLF001
                "Full-text search over documents the caller may read",
                {
                    "200": openapi._json(  # noqa: SLF001
                        openapi._obj(  # noqa: SLF001
                            {
                                "query": openapi.STR,
                                "total": {
                                    **openapi.INT,
                                    "description": "Matches the caller may read (all pages); "
                                    f"exact up to {TOTAL_CAP:,}, else {TOTAL_CAP:,} with "
                                    "total_is_lower_bound set.",
                                },
                                "total_is_lower_bound": {
                                    **openapi.BOOL,
                                    "description": "True when there are more matches than "
                                    "total says (show it as e.g. '1,000+').",
                                },
                                "reachable": {
                                    **openapi.INT,
                                    "description": "How many of the total the cursor pages "
                                    "through: the best 300 by relevance on PostgreSQL.",
                                },
                                "next_cursor": openapi.NSTR,
                                "results": {"type": "array", "items": openapi._ref("SearchHit")},  # noqa: SLF001
                            }
                        ),
                        "A page of results, best first.",
                    ),
                    "400": openapi.ERR_400,
                    "401": openapi.ERR_401,
                },
                params=[
                    openapi._q(  # noqa: SLF001
                        "q",
                        'Words (all must occur), "exact phrase", prefix*, -exclusion. '
                        "Without a positive term the result is empty.",
                    ),
                    openapi._q(  # noqa: SLF001
                        "limit",
                        "1..100, default 30.",
                        {"type": "integer", "minimum": 1, "maximum": 100},
                    ),
                    openapi._q("cursor", "next_cursor from the previous page."),  # noqa: SLF001
                    openapi._q("mine", "true: only documents the caller owns.", openapi.BOOL),  # noqa: SLF001
                    openapi._q("member", "Only documents this username owns or is a member of."),  # noqa: SLF001
                    openapi._q(  # noqa: SLF001
                        "since",
                        "Only documents whose default branch moved on or after this day (UTC).",
                        {"type": "string", "format": "date"},
                    ),
                ],
                description="Anonymous callers (no token) search public documents only. "
                "Private documents the caller may not read never affect results or total.",
            )
        }
    },
    {"SearchHit": _HIT},
)
