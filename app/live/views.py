"""``GET /live/<slug>/<branch>/<path>``: the y-websocket endpoint.

Who may join is decided before the upgrade (:func:`authorize`), so a refusal is an
ordinary HTTP 404/403 rather than a socket that opens and closes.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, g, request
from flask_sock import Sock
from sqlalchemy.exc import SQLAlchemyError

import gitstore
from app import db
from app.accounts.models import User
from app.auth.permissions import Action, grant_for
from app.documents.models import Document
from app.documents.protection import can_edit_live
from app.documents.services import get_document
from app.live.connection import CloseCode, Connection, Participant
from app.live.hub import Hub, Target
from app.live.room import RoomKey
from app.storage import get_store

log = logging.getLogger(__name__)
bp = Blueprint("live", __name__)
sock = Sock()

#: How long the receive loop waits before re-checking whether the socket was closed.
_RECEIVE_POLL_SECONDS = 2
#: How often an open socket re-reads its actor's role: role changes reach open sockets.
ACCESS_RECHECK_SECONDS = 4.0
#: (document id, actor id, branch) -> (valid until, participant or None); shared by a worker's sockets.
_access_cache: dict[tuple[int, int | None, str], tuple[float, Participant | None]] = {}


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
        actor_id=None if g.actor is None else g.actor.id,
        can_edit=can_edit_live(grant, document, args["branch"]),  # EDIT, then the branch rule
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
    target: Target = g.live_target
    # A socket lives long, and opening a room needs connections of its own: give the
    # request's back to the pool first, or simultaneous joins exhaust it.
    db.get_db().remove()
    try:
        conn = hub.join(ws, target)
    except Exception:
        log.exception("could not join live room %s", target.key)
        ws.close(1011, "could not open the room; try again")
        return
    recheck_at = time.monotonic() + ACCESS_RECHECK_SECONDS
    try:
        while not conn.closed:
            frame = ws.receive(timeout=_RECEIVE_POLL_SECONDS)
            if time.monotonic() >= recheck_at:
                recheck_at = time.monotonic() + ACCESS_RECHECK_SECONDS
                if not _still_allowed(conn, target):
                    break
            if frame is not None:
                hub.receive(conn, frame)
    finally:
        hub.leave(conn)


def _still_allowed(conn: Connection, target: Target) -> bool:
    """Close the socket if the actor's access changed since the upgrade.

    Lost read access closes with ACCESS_REVOKED (the editor stops reconnecting);
    gaining or losing edit rights closes with ROLE_CHANGED, and the client's
    reconnection passes :func:`authorize` again with the new role.
    """
    if conn.closed:
        return False
    now = time.monotonic()
    key = (target.key.document_id, target.participant.actor_id, target.key.branch)
    cached = _access_cache.get(key)
    if cached is not None and cached[0] > now:
        current = cached[1]
    else:
        try:
            current = _current_participant(*key)
        except SQLAlchemyError:  # the database is away: keep the socket, check again later
            log.warning("live: could not re-check access to document %s", key[0], exc_info=True)
            return True
        _access_cache[key] = (now + ACCESS_RECHECK_SECONDS / 2, current)
        if len(_access_cache) > 10_000:
            _access_cache.clear()
    if current is None:
        conn.close(CloseCode.ACCESS_REVOKED, "you no longer have access to this document")
        return False
    if current.can_edit != conn.can_edit:
        conn.close(CloseCode.ROLE_CHANGED, "your role changed; reconnect")
        return False
    return True


def _current_participant(document_id: int, actor_id: int | None, branch: str) -> Participant | None:
    """The actor's grant as the database says now (None: no read access)."""
    try:
        session = db.session()
        document = session.get(Document, document_id)
        actor = None if actor_id is None else session.get(User, actor_id)
        if document is None or (actor_id is not None and actor is None):
            return None
        grant = grant_for(actor, document)
        if not grant.allows(Action.READ):
            return None
        return Participant(actor_id=actor_id, can_edit=can_edit_live(grant, document, branch))
    finally:
        db.get_db().remove()
