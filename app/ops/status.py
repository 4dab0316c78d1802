"""The public status page: component checks, recorded uptime and incidents.

Component states come from the app's own checks (the readiness checks plus git,
live editing and background work). Results are recorded in ``status_checks``
(at most one row per component every ``STATUS_RECORD_SECONDS`` per process,
whenever ``/ready``, ``/metrics`` or ``/status`` runs the checks, or from
``flask --app app status record`` in cron); uptime over 90 days is the share of
recorded results that were ok.
"""

from __future__ import annotations

import logging
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import case, delete, func, select, text
from sqlalchemy.orm import Session

from app.db import utcnow
from app.ops import health
from app.ops.models import INCIDENT_STATES, CheckResult, Incident, IncidentUpdate

log = logging.getLogger(__name__)

UPTIME_DAYS = 90
CACHE_SECONDS = 15
#: Live journal entries older than this mean background commits are not keeping up.
STUCK_JOURNAL_SECONDS = 300


@dataclass(frozen=True)
class Component:
    id: str
    name: str


COMPONENTS = (
    Component("web", "Web"),
    Component("live", "Live editing"),
    Component("git", "Git over HTTP"),
    Component("database", "Database"),
    Component("redis", "Redis"),
    Component("background", "Background work"),
)


def _git_ok(app: Flask) -> None:
    subprocess.run(
        [str(app.config.get("GIT_BINARY") or "git"), "--version"],
        check=True,
        capture_output=True,
        timeout=health.TIMEOUT_SECONDS,
    )


def _background_ok(app: Flask) -> None:
    engine = app.extensions["quire.db"].engine
    cutoff = datetime.now(UTC) - timedelta(seconds=STUCK_JOURNAL_SECONDS)
    with engine.connect() as conn:
        try:
            stuck = conn.execute(
                text("SELECT count(*) FROM live_journal WHERE created_at < :cutoff"),
                {"cutoff": cutoff},
            ).scalar()
        except Exception:  # noqa: BLE001 - no live journal table: nothing can be stuck
            return
    if stuck:
        raise RuntimeError(f"{stuck} live edits older than {STUCK_JOURNAL_SECONDS} s uncommitted")


def run_checks(app: Flask) -> dict[str, dict[str, object]]:
    """Every component's current result: ``{"ok": bool, "skipped"?: True, "error"?: str}``."""
    body, _ = health.readiness(app)
    ready = body["checks"]
    results: dict[str, dict[str, object]] = {"web": {"ok": True}}
    results["database"] = ready["database"]
    results["redis"] = ready["redis"]
    git = health._timed(lambda: _git_ok(app))  # noqa: SLF001
    repos = ready["repositories"]
    results["git"] = git if not git["ok"] else repos
    live_present = "quire.live" in app.extensions
    results["live"] = (
        {"ok": False, "error": "live editing is not running"}
        if not live_present
        else ready["database"]
    )
    results["background"] = (
        health._timed(lambda: _background_ok(app)) if ready["database"]["ok"] else ready["database"]  # noqa: SLF001
    )
    return results


def current(app: Flask, state) -> dict[str, dict[str, object]]:  # noqa: ANN001
    """Cached checks (a public page must not turn each view into DB and Redis round trips)."""
    now = time.monotonic()
    cached = state.status_cache
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    results = run_checks(app)
    state.status_cache = (now, results)
    record(app, state, results)
    return results


def record(app: Flask, state, results: dict[str, dict[str, object]], force: bool = False) -> bool:  # noqa: ANN001
    """Store the results, each component at most every ``STATUS_RECORD_SECONDS`` per process."""
    interval = state.settings.status_record_seconds
    now = time.monotonic()
    due = {
        component: result
        for component, result in results.items()
        if not result.get("skipped")
        and (force or now - state.status_recorded_at.get(component, -1e12) >= interval)
    }
    if not due:
        return False
    for component in due:
        state.status_recorded_at[component] = now
    at = utcnow()
    try:
        with Session(app.extensions["quire.db"].engine) as session:
            for component, result in due.items():
                session.add(
                    CheckResult(
                        component=component, day=at.date(), ok=bool(result["ok"]), checked_at=at
                    )
                )
            cutoff = at.date() - timedelta(days=UPTIME_DAYS + 1)
            session.execute(delete(CheckResult).where(CheckResult.day < cutoff))
            session.commit()
    except Exception:  # noqa: BLE001 - the database may be what is down
        log.warning("could not record status checks", exc_info=True)
        return False
    return True


def uptime(session: Session, days: int = UPTIME_DAYS) -> dict[str, dict[str, object]]:
    """Per component: overall percentage and one ``(day, ok, total)`` per day, oldest first."""
    today = datetime.now(UTC).date()
    since = today - timedelta(days=days - 1)
    rows = session.execute(
        select(
            CheckResult.component,
            CheckResult.day,
            func.sum(case((CheckResult.ok, 1), else_=0)),
            func.count(),
        )
        .where(CheckResult.day >= since)
        .group_by(CheckResult.component, CheckResult.day)
    ).all()
    by: dict[str, dict[object, tuple[int, int]]] = {}
    for component, day, ok, total in rows:
        by.setdefault(component, {})[day] = (int(ok or 0), int(total))
    out: dict[str, dict[str, object]] = {}
    for c in COMPONENTS:
        per_day = by.get(c.id, {})
        ok = sum(v[0] for v in per_day.values())
        total = sum(v[1] for v in per_day.values())
        out[c.id] = {
            "percent": round(100.0 * ok / total, 3) if total else None,
            "days": [
                {
                    "day": (since + timedelta(days=i)).isoformat(),
                    "ok": per_day.get(since + timedelta(days=i), (0, 0))[0],
                    "total": per_day.get(since + timedelta(days=i), (0, 0))[1],
                }
                for i in range(days)
            ],
        }
    return out


def incidents(session: Session, limit: int = 20) -> list[Incident]:
    """Open incidents first, then the most recent resolved ones."""
    return list(
        session.scalars(
            select(Incident)
            .order_by(case((Incident.status == "resolved", 1), else_=0), Incident.created_at.desc())
            .limit(limit)
        )
    )


def overall(results: dict[str, dict[str, object]], open_incidents: int) -> str:
    failing = [k for k, r in results.items() if not r.get("ok")]
    if "web" in failing or "database" in failing:
        return "outage"
    if failing or open_incidents:
        return "degraded"
    return "operational"


def post_incident(session: Session, actor, title: str, status: str, message: str) -> Incident:  # noqa: ANN001
    if status not in INCIDENT_STATES:
        raise ValueError(f"status must be one of {', '.join(INCIDENT_STATES)}")
    title = title.strip()
    if not title or len(title) > 200:
        raise ValueError("a title of 1 to 200 characters is required")
    now = utcnow()
    incident = Incident(
        title=title,
        status=status,
        created_at=now,
        updated_at=now,
        resolved_at=now if status == "resolved" else None,
        created_by=actor.id,
    )
    incident.updates.append(
        IncidentUpdate(status=status, message=message.strip(), created_at=now, author_id=actor.id)
    )
    session.add(incident)
    session.commit()
    return incident


def update_incident(
    session: Session, actor, incident: Incident, status: str, message: str
) -> IncidentUpdate:  # noqa: ANN001
    if status not in INCIDENT_STATES:
        raise ValueError(f"status must be one of {', '.join(INCIDENT_STATES)}")
    now = utcnow()
    update = IncidentUpdate(
        status=status, message=message.strip(), created_at=now, author_id=actor.id
    )
    incident.updates.append(update)
    incident.status = status
    incident.updated_at = now
    incident.resolved_at = now if status == "resolved" else None
    session.commit()
    return update
