"""Pages: the in-app list (``/notifications``) and the email settings (``/settings/notifications``)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from app.accounts.views import login_required
from app.notifications import services

bp = Blueprint("notifications", __name__)

PAGE_SIZE = 30


def _before_arg() -> int | None:
    raw = request.args.get("before")
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        abort(400, "'before' must be a notification number.")
    return int(raw)


def _same_site(url: str) -> str:
    """Follow only links into Quire itself (a stored link never becomes an open redirect)."""
    parts = urlsplit(url)
    local = url.startswith("/") and not url.startswith("//") and "\\" not in url
    if local and not parts.scheme and not parts.netloc:
        return url
    if parts.scheme in ("http", "https") and parts.netloc == request.host:
        return url
    return url_for("notifications.index")


@bp.get("/notifications")
def index():
    actor = login_required()
    before = _before_arg()
    items = services.list_for(actor, before=before, limit=PAGE_SIZE + 1)
    more = len(items) > PAGE_SIZE
    items = items[:PAGE_SIZE]
    return render_template(
        "notifications/index.html",
        items=items,
        labels=services.KIND_LABELS,
        older=items[-1].id if more else None,
        paged=before is not None,
    )


@bp.post("/notifications/read")
def read_all():
    actor = login_required()
    services.mark_read(actor)
    flash("Every notification is marked read.", "success")
    return redirect(url_for("notifications.index"))


@bp.get("/notifications/<int:notification_id>")
def open_one(notification_id: int):
    """Mark one notification read and go where it points."""
    actor = login_required()
    notification = services.get_for(actor, notification_id)
    if notification is None:
        abort(404)
    services.mark_read(actor, [notification.id])
    return redirect(_same_site(notification.url))


@bp.route("/settings/notifications", methods=["GET", "POST"])
def settings():
    actor = login_required()
    if request.method == "POST":
        unknown = set(request.form.getlist("email")) - set(services.KINDS)
        if unknown:
            abort(400, f"Unknown notification kind: {', '.join(sorted(unknown))}.")
        chosen = set(request.form.getlist("email"))
        services.save_email_settings(actor, {kind: kind in chosen for kind in services.KINDS})
        flash("Your email settings are saved.", "success")
        return redirect(url_for("notifications.settings"))
    return render_template(
        "notifications/settings.html",
        choices=services.email_settings(actor),
        labels=services.KIND_LABELS,
    )
