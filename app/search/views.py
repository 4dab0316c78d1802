"""``GET /search`` (the page) and ``GET /api/v1/search`` (JSON, bearer token only)."""

from __future__ import annotations

from flask import Blueprint, g, render_template, request, url_for

from app.errors import ApiError
from app.search.index import MAX_LIMIT, search

bp = Blueprint("search", __name__)


def _limit(default: int) -> int:
    try:
        return max(1, min(int(request.args.get("limit", default)), MAX_LIMIT))
    except ValueError:
        return default


@bp.get("/search")
def page():
    q = request.args.get("q", "").strip()
    results = search(g.get("actor"), q, _limit(20), request.args.get("cursor")) if q else None
    return render_template("search/index.html", q=q, results=results)


@bp.get("/api/v1/search")
def api():
    if g.get("via_token") and g.get("actor") is None:
        raise ApiError(401, "The token is invalid, expired or revoked.", "unauthorized")
    actor = g.get("actor") if g.get("via_token") else None  # cookies are ignored here
    q = request.args.get("q", "").strip()
    results = search(actor, q, _limit(30), request.args.get("cursor"))
    return {
        "query": q,
        "total": results.total,
        "next_cursor": results.next_cursor,
        "results": [
            {
                "slug": hit.document.slug,
                "title": hit.document.title,
                "url": url_for("documents.show", slug=hit.document.slug, _external=True),
                "score": hit.score,
                "snippet": str(hit.snippet),
            }
            for hit in results.hits
        ],
    }
