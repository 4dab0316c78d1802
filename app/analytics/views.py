"""``POST /a/events`` (the page-view beacon) and ``/settings/privacy`` (a user's choices).

The beacon is CSRF-exempt because ``navigator.sendBeacon`` cannot send a token; it
accepts only same-origin requests (the ``Origin`` header, or ``Referer`` where a
browser omits it), small JSON bodies, and client event names from a fixed list.
It answers 204 whether or not anything was stored, so it reveals nothing.
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)

from app import db
from app.accounts.views import login_required
from app.analytics import privacy, tracking
from app.extensions import limiter

bp = Blueprint("analytics_tracking", __name__)

#: Largest beacon body; a page view is ~200 bytes.
MAX_BEACON_BYTES = 8 * 1024
#: Events a browser may send, and how many in one beacon.
CLIENT_EVENTS = frozenset({"page_view"})
MAX_BEACON_EVENTS = 20
MAX_SECONDS_ON_PAGE = 24 * 3600
#: One beacon per page left: a person stays far below this; a flood cannot fill the queue.
BEACON_RATE_LIMIT = "120 per minute"


class BeaconError(ValueError):
    """The beacon body is not what the script sends."""


@bp.post("/a/events")
@limiter.limit(BEACON_RATE_LIMIT)
def beacon() -> Response:
    if not _same_origin():
        abort(403)
    length = request.content_length
    if length is not None and length > MAX_BEACON_BYTES:
        abort(413)
    raw = request.stream.read(MAX_BEACON_BYTES + 1)
    if len(raw) > MAX_BEACON_BYTES:
        abort(413)
    try:
        events = parse_beacon(raw)
    except BeaconError as exc:
        return Response(f"{exc}\n", 400, mimetype="text/plain")
    for name, properties in events:
        tracking.track(name, properties)
    return Response(status=204)


def _same_origin() -> bool:
    """The beacon came from one of our own pages (sendBeacon sends ``Origin``)."""
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source or source == "null":
        return False
    base = current_app.config.get("BASE_URL") or request.host_url
    return urlsplit(source).netloc == urlsplit(base).netloc


def parse_beacon(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """``{"name", "properties"}`` or a list of them → validated (name, properties) pairs."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BeaconError("The body must be JSON.") from None
    items = data if isinstance(data, list) else [data]
    if not items or len(items) > MAX_BEACON_EVENTS:
        raise BeaconError(f"Send 1 to {MAX_BEACON_EVENTS} events.")
    events = []
    for item in items:
        if not isinstance(item, dict) or item.get("name") not in CLIENT_EVENTS:
            raise BeaconError("Unknown event; the script sends page_view only.")
        events.append((item["name"], _page_view(item.get("properties"))))
    return events


def _page_view(properties: Any) -> dict[str, Any]:
    if not isinstance(properties, dict):
        raise BeaconError("properties must be an object.")
    path = properties.get("path")
    if not isinstance(path, str) or not path.startswith("/") or len(path) > tracking.MAX_TEXT:
        raise BeaconError("path must be a site path.")
    title = properties.get("title", "")
    if not isinstance(title, str):
        raise BeaconError("title must be text.")
    seconds = properties.get("seconds_on_page", 0)
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not math.isfinite(seconds)
        or not 0 <= seconds <= MAX_SECONDS_ON_PAGE
    ):
        raise BeaconError(f"seconds_on_page must be 0 to {MAX_SECONDS_ON_PAGE}.")
    return {"path": path, "title": title[:300], "seconds_on_page": round(float(seconds), 1)}


# --- the user's privacy page ------------------------------------------------------------


@bp.route("/settings/privacy", methods=["GET", "POST"])
def settings():
    actor = login_required()
    session = db.session()
    if request.method == "POST":
        action = request.form.get("action", "")
        if action in ("opt_out", "opt_in"):
            opted_out = action == "opt_out"
            privacy.set_opted_out(session, actor.id, opted_out)
            # This process stops at once; the writer enforces it in every process.
            tracking.get_tracker().opted_out[actor.id] = opted_out
            flash(
                "Quire no longer records your product usage."
                if opted_out
                else "Quire records your product usage again.",
                "success",
            )
        elif action == "delete":
            tracking.flush()  # what is still queued is deleted too
            visits, events = privacy.delete_user_data(session, actor.id)
            flash(f"Deleted {visits} visits and {events} events.", "success")
        else:
            abort(400)
        return redirect(url_for("analytics_tracking.settings"))
    return render_template(
        "analytics/privacy.html",
        opted_out=privacy.is_opted_out(session, actor.id),
        retention_days=current_app.config.get("ANALYTICS_RETENTION_DAYS", 395),
        cookieless=current_app.config.get("ANALYTICS_COOKIELESS", False),
        enabled=tracking.enabled(),
    )


@bp.get("/settings/privacy/export")
def export() -> Response:
    actor = login_required()
    tracking.flush()
    data = privacy.export_user(db.session(), actor.id)
    return Response(
        json.dumps(data, indent=2, default=str),
        200,
        {
            "Content-Disposition": 'attachment; filename="quire-analytics.json"',
            "Cache-Control": "no-store",
        },
        mimetype="application/json",
    )
