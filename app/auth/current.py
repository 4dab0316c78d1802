"""Who is asking: the signed-in user from the session cookie or a bearer token."""

from __future__ import annotations

import hashlib
import hmac

from flask import Flask, current_app, g, request, session
from sqlalchemy import select

from app import db
from app.accounts.models import User
from app.accounts.services import user_for_token


def load_actor() -> None:
    """Set ``g.actor`` (a :class:`User` or None) and ``g.via_token`` for this request.

    A bearer token wins over the cookie: scripts and git clients send tokens,
    browsers send cookies. Pages are CSRF-protected; the API accepts only tokens.
    """
    g.actor = None
    g.via_token = False
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        g.actor = user_for_token(header[7:].strip())
        g.via_token = True
        return
    user_id = session.get("uid")
    if user_id is None:
        return
    user = db.session().scalar(select(User).where(User.id == user_id))
    # The session remembers a fragment of the password hash: changing the password
    # (or deactivating the account) signs out every other session.
    if user is None or not user.is_active or session.get("pwd") != password_stamp(user):
        session.clear()
        return
    g.actor = user


def password_stamp(user: User) -> str:
    """A keyed digest of the password hash: changes with the password, reveals nothing."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, user.password_hash.encode(), hashlib.sha256).hexdigest()[:20]


def sign_in(user: User) -> None:
    session.clear()  # a fresh session on login defeats fixation
    session["uid"] = user.id
    session["pwd"] = password_stamp(user)
    session.permanent = True


def sign_out() -> None:
    session.clear()


def init_app(app: Flask) -> None:
    app.before_request(load_actor)

    @app.context_processor
    def _inject_actor() -> dict[str, object]:
        return {"actor": g.get("actor")}
