"""Sign-up, log-in, log-out and personal access tokens."""

from __future__ import annotations

from datetime import UTC, datetime, time
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import func, select

from app import db
from app.accounts import services
from app.accounts.models import User
from app.analytics import track
from app.auth.current import sign_in, sign_out
from app.extensions import limiter

bp = Blueprint("accounts", __name__)


def _safe_next(target: str | None) -> str:
    """Only same-site paths are followed after login (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//"):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and "\\" not in target:
            return target
    return url_for("documents.home")


def login_required() -> User:
    if g.actor is None:
        abort(redirect(url_for("accounts.login", next=request.full_path.rstrip("?"))))
    return g.actor


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def signup():
    first = db.session().scalar(select(func.count(User.id))) == 0
    if request.method == "GET":
        return render_template("accounts/signup.html", form={}, first_account=first)
    form = request.form
    try:
        user = services.create_user(
            form.get("username", ""), form.get("email", ""), form.get("password", "")
        )
    except services.AccountError as exc:
        return render_template(
            "accounts/signup.html", form=form, error=str(exc), first_account=first
        ), 422
    sign_in(user)
    track("signed_up", user=user)
    flash(
        f"Welcome to Quire, {user.username}."
        + (" You are the site admin." if user.is_admin else ""),
        "success",
    )
    return redirect(url_for("documents.home"))


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def login():
    next_url = request.args.get("next")
    if request.method == "GET":
        return render_template("accounts/login.html", next=next_url)
    user = services.authenticate(request.form.get("login", ""), request.form.get("password", ""))
    if user is None:
        return (
            render_template(
                "accounts/login.html",
                next=next_url,
                login=request.form.get("login", ""),
                error="That username or password is not right.",
            ),
            401,
        )
    sign_in(user)
    track("logged_in", user=user)
    return redirect(_safe_next(next_url))


@bp.post("/logout")
def logout():
    sign_out()
    flash("You are logged out.", "success")
    return redirect(url_for("documents.home"))


@bp.route("/settings/tokens", methods=["GET", "POST"])
def tokens():
    actor = login_required()
    new_secret = None
    error = None
    status = 200
    if request.method == "POST":
        expires_at = None
        raw = request.form.get("expires", "").strip()
        try:
            if raw:
                expires_at = datetime.combine(
                    datetime.strptime(raw, "%Y-%m-%d").date(), time.max, UTC
                )
            _, new_secret = services.create_token(
                actor, request.form.get("name", ""), expires_at=expires_at
            )
            track("token_created", user=actor)
        except ValueError as exc:
            error = (
                str(exc)
                if isinstance(exc, services.AccountError)
                else "Enter the expiry as a date."
            )
            status = 422
    return (
        render_template(
            "accounts/tokens.html",
            tokens=services.list_tokens(actor),
            new_secret=new_secret,
            error=error,
        ),
        status,
        {"Cache-Control": "no-store"},
    )


@bp.post("/settings/tokens/<int:token_id>/revoke")
def revoke_token(token_id: int):
    actor = login_required()
    if services.revoke_token(actor, token_id):
        flash("Token revoked.", "success")
    else:
        abort(404)
    return redirect(url_for("accounts.tokens"))
