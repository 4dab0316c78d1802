"""``GET /live/<slug>/<branch>/<path>``: the y-websocket endpoint.

Who may join is decided before the upgrade (:func:`authorize`), so a refusal is an
ordinary HTTP 404/403 rather than a socket that opens and closes.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, g, request
from flask_sock import Sock

import gitstore
from app.auth.permissions import Action, grant_for
from app.documents.services import get_document
from app.live.connection import Participant
from app.live.hub import Hub, Target
from app.live.room import RoomKey
from app.storage import get_store

bp = Blueprint("live", __name__)
sock = Sock()

#: How long the receive loop waits before re-checking whether the socket was closed.
_RECEIVE_POLL_SECONDS = 5


def get_hub() -> Hub:
    return current_app.extensions["quire.live"]


@bp.before_request
def authorize() -> None:
    """Authenticate (cookie or bearer token, already in ``g.actor``) and check READ.

    Also refuses permessage-deflate: simple-websocket builds its handshake from
    the environ, so dropping the offer here leaves the connection uncompressed
    (NOTES: deflate costs 3x per send and collapses a large room).
    """
    request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
    args = request.view_args or {}
    document = get_document(args.get("slug", ""))
    if document is None:
        abort(404)
    grant = grant_for(g.actor, document)
    if not grant.allows(Action.READ):
        abort(404)
    if not g.via_token and not _same_origin():
        abort(403)  # a cookie sent by another site's page (cross-site websocket hijacking)
    try:
        path = gitstore.normalize_path(args.get("path", ""))
        get_store().open(document.repo_id).head(args.get("branch", ""))
    except gitstore.GitStoreError:
        abort(404)
    participant = Participant(
        actor_id=None if g.actor is None else g.actor.id, can_edit=grant.allows(Action.EDIT)
    )
    g.live_target = Target(
        RoomKey(document.id, args["branch"], path), document.repo_id, participant
    )


def _same_origin() -> bool:
    origin = request.headers.get("Origin")
    if origin is None:  # not a browser
        return True
    base = current_app.config.get("BASE_URL") or request.host_url
    return urlsplit(origin).netloc == urlsplit(base).netloc


@sock.route("/live/<slug>/<branch>/<path:path>", bp=bp)
def live(ws, slug: str, branch: str, path: str) -> None:
    hub = get_hub()
    conn = hub.join(ws, g.live_target)
    try:
        while not conn.closed:
            frame = ws.receive(timeout=_RECEIVE_POLL_SECONDS)
            if frame is not None:
                hub.receive(conn, frame)
    finally:
        hub.leave(conn)
