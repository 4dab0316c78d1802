"""Operational endpoints: ``/up``, ``/ready``, ``/metrics`` and the admin System page."""

from __future__ import annotations

import hmac
import ipaddress
import shutil
import time
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, g, render_template, request
from sqlalchemy import text

from app.ops import health, metrics
from app.ops.instrument import get_state

bp = Blueprint("ops", __name__)


@bp.get("/up")
def up():
    """Liveness: answers as soon as the process can serve, checks no dependency."""
    return {"status": "up"}


@bp.get("/ready")
def ready():
    """Readiness: database, Redis and the repositories volume, each with a short timeout."""
    from app.ops import status

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    body, ok = health.readiness(app)
    checks = body["checks"]
    status.record(
        app,
        get_state(app),
        {"web": {"ok": True}, "database": checks["database"], "redis": checks["redis"]},
    )
    response = app.json.response(body)
    response.status_code = 200 if ok else 503
    response.headers["Cache-Control"] = "no-store"
    return response


def metrics_allowed() -> bool:
    settings = get_state(current_app).settings
    token = settings.metrics_token
    header = request.headers.get("Authorization", "")
    if (
        token
        and header.lower().startswith("bearer ")
        and hmac.compare_digest(header[7:].strip().encode(), token.encode())
    ):
        return True
    try:
        addr = ipaddress.ip_address((request.remote_addr or "").split("%", 1)[0])
    except ValueError:
        return False
    return any(addr in net for net in settings.allowed_networks())


@bp.get("/metrics")
def prometheus_metrics():
    """Prometheus exposition; 404 (as if absent) outside the allowed networks without the token."""
    if not metrics_allowed():
        abort(404)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    payload, content_type = metrics.render(
        Path(app.config["REPOS_ROOT"]), lambda: health.readiness(app)[0]["checks"]
    )
    return Response(payload, content_type=content_type, headers={"Cache-Control": "no-store"})


def pg_stat_statements(limit: int = 15) -> tuple[list[dict[str, object]] | None, str | None]:
    """The slowest statements from ``pg_stat_statements``, or ``(None, why not)``."""
    engine = current_app.extensions["quire.db"].engine
    if engine.dialect.name != "postgresql":
        return None, "not PostgreSQL"
    try:
        with engine.connect() as conn:
            present = conn.execute(
                text("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
            ).scalar()
            if not present:
                return None, "the pg_stat_statements extension is not installed"
            rows = conn.execute(
                text(
                    "SELECT query, calls, mean_exec_time AS mean_ms, max_exec_time AS max_ms,"
                    " total_exec_time AS total_ms FROM pg_stat_statements"
                    " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
                    " ORDER BY mean_exec_time DESC LIMIT :limit"
                ),
                {"limit": limit},
            ).mappings()
            return [
                {
                    "query": r["query"],
                    "calls": r["calls"],
                    "mean_ms": round(r["mean_ms"], 1),
                    "max_ms": round(r["max_ms"], 1),
                    "total_ms": round(r["total_ms"], 1),
                }
                for r in rows
            ], None
    except Exception as exc:  # noqa: BLE001 - e.g. not in shared_preload_libraries
        return None, f"pg_stat_statements unreadable: {type(exc).__name__}"


@bp.get("/admin/system")
def system():
    """Site admins: request rate, p95, errors, slowest routes and statements, disk."""
    from app.auth.permissions import can_administer_site

    if not can_administer_site(g.get("actor")):
        abort(404)
    state = get_state(current_app)
    summary = state.routes.summary()
    statements, pg_note = pg_stat_statements()
    source = "pg_stat_statements"
    if statements is None:
        statements = state.slow_queries.slowest()
        source = f"slow queries over {state.settings.slow_query_ms:.0f} ms seen by this worker"
    try:
        usage = shutil.disk_usage(current_app.config["REPOS_ROOT"])
        disk = {
            "free": usage.free,
            "total": usage.total,
            "used_ratio": (usage.total - usage.free) / usage.total if usage.total else 0.0,
        }
    except OSError:
        disk = None
    return render_template(
        "ops/system.html",
        summary=summary,
        statements=statements,
        statements_source=source,
        pg_note=pg_note,
        disk=disk,
        uptime_seconds=time.time() - state.started_at,
        live=_live_numbers(),
        oldest_uncommitted_seconds=_oldest_uncommitted_seconds(),
    )


def _oldest_uncommitted_seconds() -> float | None:
    """Commit lag: age of the oldest live edit not yet committed (all workers, from SQL)."""
    from datetime import UTC, datetime

    engine = current_app.extensions["quire.db"].engine
    try:
        with engine.connect() as conn:
            oldest = conn.execute(text("SELECT min(created_at) FROM live_journal")).scalar()
    except Exception:  # noqa: BLE001 - no live journal here
        return None
    if oldest is None:
        return 0.0
    if isinstance(oldest, str):
        oldest = datetime.fromisoformat(oldest)
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return max(0.0, (datetime.now(UTC) - oldest).total_seconds())


def _live_numbers() -> dict[str, float]:
    """Live editing gauges of this worker, when live editing runs here."""
    numbers: dict[str, float] = {}
    for name, gauge in (
        ("rooms", metrics.LIVE_ROOMS),
        ("editors", metrics.LIVE_EDITORS),
        ("uncommitted", metrics.LIVE_JOURNAL_UNCOMMITTED),
    ):
        try:
            numbers[name] = gauge._value.get()  # noqa: SLF001 - this process's value
        except Exception:  # noqa: BLE001
            numbers[name] = 0
    return numbers


# --- public status page ---------------------------------------------------------------------------


def _status_context() -> dict[str, object]:
    from app import db
    from app.ops import status

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    results = status.current(app, get_state(app))
    session = db.session()
    uptime = status.uptime(session)
    incidents = status.incidents(session)
    open_count = sum(1 for i in incidents if i.status != "resolved")
    components = []
    for c in status.COMPONENTS:
        result = results.get(c.id, {"ok": False})
        state = "not used" if result.get("skipped") else ("operational" if result["ok"] else "down")
        components.append({"id": c.id, "name": c.name, "state": state, "uptime": uptime[c.id]})
    return {
        "overall": status.overall(results, open_count),
        "components": components,
        "incidents": incidents,
        "states": status.INCIDENT_STATES,
    }


def _incident_json(incident) -> dict[str, object]:  # noqa: ANN001
    return {
        "id": incident.id,
        "title": incident.title,
        "status": incident.status,
        "created_at": incident.created_at.isoformat(),
        "updated_at": incident.updated_at.isoformat(),
        "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
        "updates": [
            {"status": u.status, "message": u.message, "created_at": u.created_at.isoformat()}
            for u in incident.updates
        ],
    }


@bp.get("/status")
def status_page():
    from app.auth.permissions import can_administer_site
    from app.ops.models import StatusSubscription

    context = _status_context()
    actor = g.get("actor")
    subscribed = False
    if actor is not None:
        from app import db

        subscribed = db.session().get(StatusSubscription, actor.id) is not None
    return render_template(
        "ops/status.html",
        **context,
        is_admin=can_administer_site(actor),
        subscribed=subscribed,
    )


@bp.get("/status.json")
def status_json():
    context = _status_context()
    return {
        "status": context["overall"],
        "components": [
            {
                "id": c["id"],
                "name": c["name"],
                "state": c["state"],
                "uptime_90d_percent": c["uptime"]["percent"],
            }
            for c in context["components"]
        ],
        "incidents": [_incident_json(i) for i in context["incidents"]],
    }


def _admin():  # noqa: ANN202
    from app.auth.permissions import can_administer_site

    actor = g.get("actor")
    if not can_administer_site(actor):
        abort(404)
    return actor


@bp.post("/admin/incidents")
def incident_create():
    from flask import flash, redirect, url_for

    from app import db
    from app.ops import notify, status

    actor = _admin()
    try:
        incident = status.post_incident(
            db.session(),
            actor,
            request.form.get("title", ""),
            request.form.get("status", "investigating"),
            request.form.get("message", ""),
        )
    except ValueError as exc:
        flash(str(exc), "error")
        return redirect(url_for("ops.status_page"))
    notify.incident_changed(incident, incident.updates[0])
    flash("Incident posted.", "success")
    return redirect(url_for("ops.status_page") + f"#incident-{incident.id}")


@bp.post("/admin/incidents/<int:incident_id>")
def incident_update(incident_id: int):
    from flask import flash, redirect, url_for

    from app import db
    from app.ops import notify, status
    from app.ops.models import Incident

    actor = _admin()
    incident = db.session().get(Incident, incident_id)
    if incident is None:
        abort(404)
    try:
        update = status.update_incident(
            db.session(),
            actor,
            incident,
            request.form.get("status", ""),
            request.form.get("message", ""),
        )
    except ValueError as exc:
        flash(str(exc), "error")
        return redirect(url_for("ops.status_page"))
    notify.incident_changed(incident, update)
    flash("Incident updated.", "success")
    return redirect(url_for("ops.status_page") + f"#incident-{incident.id}")


@bp.post("/status/subscription")
def status_subscription():
    from flask import flash, redirect, url_for

    from app import db
    from app.ops.models import StatusSubscription

    actor = g.get("actor")
    if actor is None:
        return redirect(url_for("accounts.login", next=url_for("ops.status_page")))
    session = db.session()
    existing = session.get(StatusSubscription, actor.id)
    if request.form.get("subscribe") == "1" and existing is None:
        session.add(StatusSubscription(user_id=actor.id))
        flash("You will get an email for every incident update.", "success")
    elif request.form.get("subscribe") != "1" and existing is not None:
        session.delete(existing)
        flash("You will no longer get incident emails.", "success")
    session.commit()
    return redirect(url_for("ops.status_page"))
