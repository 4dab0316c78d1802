"""Recording visits and events without slowing or failing a request.

On the request path :func:`track` only decides whether the request may be tracked
(enabled, no ``DNT``/``Sec-GPC``, not a bot, not opted out) and appends a small
record to this application's in-memory queue. A background writer — a greenlet
under gevent, a daemon thread otherwise — drains every queue every second (sooner
at :data:`BATCH_SIZE` records) with its own database session, inside an app
context. A failing write is logged and counted and the batch is dropped: analytics
is never worth an error page. :func:`flush` writes what is queued now (tests, exit).

Visits follow Ahoy: the ``quire_visit`` cookie lives four idle hours (renewed by
every page), so a browser that comes back later starts a new visit; the
``quire_visitor`` cookie groups visits for two years. In cookieless mode there are
no cookies: the visitor is a daily-rotating hash (:mod:`app.analytics.privacy`) and
the writer continues that visitor's last visit when it was seen within four hours.

Page visits are recorded for HTML pages only: never for ``/static``, ``/metrics``,
``/ready``, ``/ping``, ``/up``, the beacon, the API, live sockets or Git over HTTP.
Events from token-authenticated API calls and Git clients are recorded without a
visit (they are people acting through a tool, so the bot rule does not apply).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import secrets
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, has_app_context, has_request_context, request
from prometheus_client import Counter
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.analytics import bots, privacy
from app.analytics.models import Event, Visit
from app.db import utcnow

log = logging.getLogger(__name__)

VISIT_COOKIE = "quire_visit"
VISITOR_COOKIE = "quire_visitor"
#: A visit ends after this long without a request (Ahoy's default).
VISIT_IDLE = timedelta(hours=4)
VISITOR_MAX_AGE = timedelta(days=730)
#: The writer wakes this often, or as soon as a queue holds BATCH_SIZE records.
FLUSH_SECONDS = 1.0
BATCH_SIZE = 500
#: Beyond this many queued records (the database is away) new ones are dropped and counted.
MAX_QUEUE = 50_000
#: Largest JSON properties of one event; larger ones are replaced by a marker.
MAX_PROPERTIES_BYTES = 8192
MAX_TEXT = 2048
EVENT_NAME = re.compile(r"^[a-z][a-z0-9_.:-]{0,99}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
#: Request paths that are never a page visit.
SKIPPED_PREFIXES = ("/static/", "/metrics", "/ready", "/ping", "/up", "/a/", "/api/", "/live/")
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")

RECORDS = Counter(
    "quire_analytics_records_total",
    "Analytics visits and events by outcome (written, dropped: queue full, failed: write error)",
    ["outcome"],
)


# --- the queued records -----------------------------------------------------------------


@dataclass
class Hit:
    """A request seen as part of a visit: starts the visit or extends it."""

    visit_token: str | None  # None in cookieless mode: the writer finds or starts the visit
    visitor_token: str
    user_id: int | None
    time: datetime
    ip: str | None = None
    user_agent: str | None = None
    referrer: str | None = None
    referring_domain: str | None = None
    landing_page: str | None = None
    utm: dict[str, str] = field(default_factory=dict)


@dataclass
class PendingEvent:
    name: str
    properties: dict[str, Any]
    user_id: int | None
    time: datetime
    visit_token: str | None = None
    visitor_token: str | None = None
    #: Resolved to ``user_id`` by the writer (a live commit knows its author's email only).
    author_email: str | None = None


@dataclass
class VisitContext:
    """What this request contributes: its visit (if any) and whether to set cookies."""

    visit_token: str | None
    visitor_token: str | None
    set_cookies: bool = False


# --- the per-application tracker --------------------------------------------------------


class Tracker:
    """One application's queue, its writer state and its opt-out cache."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.queue: deque[Hit | PendingEvent] = deque()
        self.flush_lock = threading.Lock()
        #: user id -> opted out, as the writer last read it (the writer's check is the rule).
        self.opted_out: dict[int, bool] = {}
        self.written = 0
        self.dropped = 0
        self.failed = 0
        #: id(live connection) -> (monotonic join time, user id, document id)
        self.live_joins: dict[int, tuple[float, int | None, int]] = {}

    def enqueue(self, record: Hit | PendingEvent) -> None:
        if len(self.queue) >= MAX_QUEUE:
            self.dropped += 1
            RECORDS.labels(outcome="dropped").inc()
            return
        self.queue.append(record)
        _writer.ensure_running()
        if len(self.queue) >= BATCH_SIZE:
            _writer.wake()

    def flush(self) -> int:
        """Write everything queued now; returns the records written. Never raises."""
        written = 0
        with self.flush_lock:
            while self.queue:
                batch: list[Hit | PendingEvent] = []
                while self.queue and len(batch) < BATCH_SIZE:
                    batch.append(self.queue.popleft())
                written += self._write_safely(batch)
        return written

    def _write_safely(self, batch: list[Hit | PendingEvent]) -> int:
        error: BaseException | None = None
        for attempt in (1, 2):
            try:
                with self.app.app_context():
                    count = write_batch(self, batch)
                self.written += count
                RECORDS.labels(outcome="written").inc(count)
                return count
            except IntegrityError as exc:
                # Another process started the same visit a moment ago: retrying finds it.
                error = exc
                if attempt == 2:
                    break
            except Exception as exc:  # noqa: BLE001 - analytics must never take anything down
                error = exc
                break
        # Logged outside the except block, so name the error (exc_info=True would be empty).
        log.warning("analytics: could not write %d records", len(batch), exc_info=error)
        self.failed += len(batch)
        RECORDS.labels(outcome="failed").inc(len(batch))
        return 0


def get_tracker(app: Flask | None = None) -> Tracker:
    return (app or current_app).extensions["quire.analytics"]


_trackers: weakref.WeakSet[Tracker] = weakref.WeakSet()


# --- the background writer --------------------------------------------------------------


class _Writer:
    """Drains every tracker's queue: one greenlet (gevent) or daemon thread per process."""

    def __init__(self) -> None:
        self._pid: int | None = None
        self._event = threading.Event()
        self._start_lock = threading.Lock()

    def ensure_running(self) -> None:
        if self._pid == os.getpid():
            return
        with self._start_lock:
            if self._pid == os.getpid():
                return
            # After a fork (gunicorn workers) the parent's thread does not exist here.
            self._event = threading.Event()
            self._pid = os.getpid()
            if _under_gevent():
                import gevent

                gevent.spawn(self._run)
            else:
                threading.Thread(target=self._run, name="analytics-writer", daemon=True).start()

    def wake(self) -> None:
        self._event.set()

    def _run(self) -> None:
        while True:
            self._event.wait(FLUSH_SECONDS)
            self._event.clear()
            flush()


def _under_gevent() -> bool:
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is a dependency
        return False
    return monkey.is_module_patched("threading")


_writer = _Writer()


def flush() -> int:
    """Write every queued record of every application in this process now."""
    return sum(tracker.flush() for tracker in list(_trackers))


atexit.register(flush)


# --- writing a batch --------------------------------------------------------------------


def write_batch(tracker: Tracker, batch: list[Hit | PendingEvent]) -> int:
    """Insert or extend visits, then insert events, in one transaction of its own."""
    engine = tracker.app.extensions["quire.db"].engine
    with Session(engine, expire_on_commit=False) as session:
        _resolve_authors(session, batch)
        user_ids = {r.user_id for r in batch if r.user_id is not None}
        out = privacy.opted_out_among(session, user_ids)
        tracker.opted_out.update({uid: uid in out for uid in user_ids})
        batch = [r for r in batch if r.user_id is None or r.user_id not in out]
        hits = [r for r in batch if isinstance(r, Hit)]
        events = [r for r in batch if isinstance(r, PendingEvent)]
        by_token, by_visitor = _write_visits(session, hits, events)
        rows = []
        for e in events:
            visit_id = None
            if e.visit_token is not None:
                visit_id = by_token.get(e.visit_token)
            elif e.visitor_token is not None:
                visit_id = by_visitor.get(e.visitor_token)
            rows.append(
                {
                    "visit_id": visit_id,
                    "user_id": e.user_id,
                    "visitor_token": e.visitor_token,
                    "name": e.name,
                    "properties": e.properties,
                    "time": e.time,
                }
            )
        if rows:
            session.execute(Event.__table__.insert(), rows)
        session.commit()
        return len(hits) + len(rows)


def _resolve_authors(session: Session, batch: list[Hit | PendingEvent]) -> None:
    emails = {r.author_email for r in batch if isinstance(r, PendingEvent) and r.author_email}
    if not emails:
        return
    from app.accounts.models import User

    found = dict(session.execute(select(User.email, User.id).where(User.email.in_(emails))).all())
    for r in batch:
        if isinstance(r, PendingEvent) and r.author_email and r.user_id is None:
            r.user_id = found.get(r.author_email)


def _write_visits(
    session: Session, hits: list[Hit], events: list[PendingEvent]
) -> tuple[dict[str, int], dict[str, int]]:
    """Start or extend the visits of ``hits``; map visit tokens (and cookieless visitors) to ids.

    A visit's user is set once known: the first hit of a visit is usually anonymous
    and the sign-up or log-in event that follows names the user.
    """
    users_by_token: dict[str, int] = {}
    users_by_visitor: dict[str, int] = {}
    for r in [*hits, *events]:
        if r.user_id is None:
            continue
        if r.visit_token:
            users_by_token.setdefault(r.visit_token, r.user_id)
        elif r.visitor_token:
            users_by_visitor.setdefault(r.visitor_token, r.user_id)

    # Cookie visits: one row per visit token.
    first: dict[str, Hit] = {}
    last_seen: dict[str, datetime] = {}
    for hit in hits:
        if hit.visit_token is None:
            continue
        first.setdefault(hit.visit_token, hit)
        last_seen[hit.visit_token] = max(last_seen.get(hit.visit_token, hit.time), hit.time)
    tokens = set(first) | {e.visit_token for e in events if e.visit_token}
    by_token: dict[str, int] = {}
    if tokens:
        by_token = dict(
            session.execute(
                select(Visit.visit_token, Visit.id).where(Visit.visit_token.in_(tokens))
            ).all()
        )
    new = [_new_visit(hit) for token, hit in first.items() if token not in by_token]
    session.add_all(new)
    session.flush()
    by_token.update({v.visit_token: v.id for v in new})
    for token, seen in last_seen.items():
        _extend(session, Visit.visit_token == token, seen, users_by_token.get(token))
    for token, user_id in users_by_token.items():
        if token not in last_seen and token in by_token:
            _extend(session, Visit.visit_token == token, None, user_id)

    # Cookieless visits: continue the visitor's visit seen within VISIT_IDLE, else start one.
    by_visitor: dict[str, int] = {}
    cookieless = [h for h in hits if h.visit_token is None]
    visitors = {h.visitor_token for h in cookieless} | {
        e.visitor_token for e in events if e.visit_token is None and e.visitor_token
    }
    for visitor in visitors:
        own = [h for h in cookieless if h.visitor_token == visitor]
        seen = max((h.time for h in own), default=None)
        since = (min((h.time for h in own), default=utcnow())) - VISIT_IDLE
        visit_id = session.scalar(
            select(Visit.id)
            .where(Visit.visitor_token == visitor, Visit.last_seen_at >= since)
            .order_by(Visit.last_seen_at.desc())
            .limit(1)
        )
        if visit_id is None and own:
            visit = _new_visit(own[0], visit_token=secrets.token_urlsafe(24))
            session.add(visit)
            session.flush()
            visit_id = visit.id
        if visit_id is not None:
            by_visitor[visitor] = visit_id
            _extend(session, Visit.id == visit_id, seen, users_by_visitor.get(visitor))
    return by_token, by_visitor


def _extend(session: Session, which: Any, seen: datetime | None, user_id: int | None) -> None:
    if user_id is not None:
        session.execute(update(Visit).where(which, Visit.user_id.is_(None)).values(user_id=user_id))
    if seen is not None:
        session.execute(
            update(Visit).where(which, Visit.last_seen_at < seen).values(last_seen_at=seen)
        )


def _new_visit(hit: Hit, *, visit_token: str | None = None) -> Visit:
    client = bots.parse(hit.user_agent)
    return Visit(
        visit_token=visit_token or hit.visit_token,
        visitor_token=hit.visitor_token,
        user_id=hit.user_id,
        ip=hit.ip,
        user_agent=hit.user_agent,
        referrer=hit.referrer,
        referring_domain=hit.referring_domain,
        landing_page=hit.landing_page,
        browser=client.browser,
        os=client.os,
        device_type=client.device_type,
        started_at=hit.time,
        last_seen_at=hit.time,
        **{name: hit.utm.get(name) for name in UTM_FIELDS},
    )


# --- the request side -------------------------------------------------------------------


def enabled(app: Flask | None = None) -> bool:
    return bool((app or current_app).config.get("ANALYTICS_ENABLED", True))


def _user_id(user: Any) -> int | None:
    if user is None:
        return None
    if isinstance(user, int):
        return user
    return getattr(user, "id", None)


def _clean_properties(properties: dict[str, Any] | None) -> dict[str, Any]:
    """JSON-safe plain data, detached from any ORM object, and bounded in size."""
    if not properties:
        return {}
    encoded = json.dumps(properties, default=str, separators=(",", ":"))
    if len(encoded) > MAX_PROPERTIES_BYTES:
        return {"truncated": True}
    return json.loads(encoded)


def is_page_request(response: Response | None = None) -> bool:
    """A browser asking for an HTML page (not an asset, probe, API call or Git)."""
    if request.method != "GET" or request.blueprint == "githttp":
        return False
    if request.path.startswith(SKIPPED_PREFIXES) or ".git/" in request.path:
        return False
    return response is None or (response.status_code == 200 and response.mimetype == "text/html")


def request_allows_tracking() -> bool:
    """May anything about this request be stored? (Settings, DNT/GPC, bots, opt-out.)"""
    if not enabled() or privacy.refuses_tracking(request.headers):
        return False
    actor = g.get("actor")
    if actor is not None and get_tracker().opted_out.get(actor.id):
        return False
    if _via_tool():
        return True
    return not bots.is_bot(request.user_agent.string)


def _via_tool() -> bool:
    """A script with a token or a Git client: a person acting through a tool, not a crawler."""
    return bool(g.get("via_token")) or request.blueprint == "githttp"


def current_visit() -> VisitContext | None:
    """This request's visit, started (queued) on first use; None when not tracked."""
    if "analytics_visit" in g:
        return g.analytics_visit
    context = None
    if request_allows_tracking():
        context = VisitContext(None, None) if _via_tool() else _start_visit()
    g.analytics_visit = context
    return context


def _start_visit() -> VisitContext:
    config = current_app.config
    user_agent = request.user_agent.string[: bots.MAX_USER_AGENT]
    remote = request.remote_addr
    masked = privacy.mask_ip(remote)
    now = utcnow()
    if config.get("ANALYTICS_COOKIELESS"):
        visitor = privacy.cookieless_visitor_token(
            masked, user_agent, now.date(), config["SECRET_KEY"]
        )
        context = VisitContext(None, visitor, set_cookies=False)
        new_visit = True  # the writer decides whether it continues one
    else:
        visit = request.cookies.get(VISIT_COOKIE, "")
        visitor = request.cookies.get(VISITOR_COOKIE, "")
        new_visit = not _TOKEN.match(visit)
        if new_visit:
            visit = secrets.token_urlsafe(24)
        if not _TOKEN.match(visitor):
            visitor = secrets.token_urlsafe(24)
        context = VisitContext(visit, visitor, set_cookies=True)
    actor = g.get("actor")
    # IP and user agent always (a visit whose row is missing is re-created from any
    # hit); where the visit came from only on its first request.
    hit = Hit(
        visit_token=context.visit_token,
        visitor_token=visitor,
        user_id=None if actor is None else actor.id,
        time=now,
        ip=masked if config.get("ANALYTICS_MASK_IP", True) else remote,
        user_agent=user_agent or None,
    )
    if new_visit:
        referrer = request.referrer[:MAX_TEXT] if request.referrer else None
        domain = urlsplit(referrer).hostname if referrer else None
        hit.referrer = referrer
        hit.referring_domain = (
            domain[:255] if domain and domain != request.host.split(":")[0] else None
        )
        hit.landing_page = request.full_path.rstrip("?")[:MAX_TEXT]
        hit.utm = {k: request.args[k][:255] for k in UTM_FIELDS if request.args.get(k)}
    get_tracker().enqueue(hit)
    return context


def track(name: str, properties: dict[str, Any] | None = None, *, user: Any = None) -> None:
    """Queue one event. Never raises, never touches the database.

    In a request the event joins the request's visit and, without ``user``, the
    signed-in user; outside one (CLI, background work) it needs an app context.
    """
    try:
        if not EVENT_NAME.match(name):
            raise ValueError(f"bad analytics event name {name!r}")
        if has_request_context():
            context = current_visit()
            if context is None:
                return
            user_id = _user_id(user if user is not None else g.get("actor"))
            if user_id is not None and get_tracker().opted_out.get(user_id):
                return
            record = PendingEvent(
                name,
                _clean_properties(properties),
                user_id,
                utcnow(),
                visit_token=context.visit_token,
                visitor_token=context.visitor_token,
            )
        elif has_app_context():
            if not enabled():
                return
            record = PendingEvent(name, _clean_properties(properties), _user_id(user), utcnow())
        else:
            return
        get_tracker().enqueue(record)
    except Exception:  # noqa: BLE001 - a tracking bug must never fail the action tracked
        log.warning("analytics: could not queue %r", name, exc_info=True)
        RECORDS.labels(outcome="failed").inc()


def _after_request(response: Response) -> Response:
    """Count a page visit and keep the visit cookies fresh (sliding four-hour window)."""
    try:
        if "analytics_visit" not in g and is_page_request(response):
            current_visit()
        context = g.get("analytics_visit")
        if context is not None and context.set_cookies:
            # Like the session cookie: Secure whenever the page came over HTTPS.
            secure = bool(current_app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure
            for cookie, token, max_age in (
                (VISIT_COOKIE, context.visit_token, VISIT_IDLE),
                (VISITOR_COOKIE, context.visitor_token, VISITOR_MAX_AGE),
            ):
                response.set_cookie(
                    cookie,
                    token or "",
                    max_age=int(max_age.total_seconds()),
                    secure=secure,
                    httponly=True,
                    samesite="Lax",
                )
    except Exception:  # noqa: BLE001
        log.warning("analytics: could not record the page visit", exc_info=True)
        RECORDS.labels(outcome="failed").inc()
    return response


def script_enabled() -> bool:
    """Whether the page-view script belongs on this page (templates ask)."""
    try:
        return has_request_context() and request_allows_tracking() and not _via_tool()
    except Exception:  # noqa: BLE001
        return False


# --- live editing (hub hooks) -----------------------------------------------------------


def _live_hooks(app: Flask, tracker: Tracker) -> None:
    """Sessions joined and ended, and live commits, from the live hub's own hooks."""
    hub = app.extensions.get("quire.live")
    if hub is None:
        return

    def joined(_hub: Any, room: Any, connection: Any) -> None:
        user_id = connection.participant.actor_id
        tracker.live_joins[id(connection)] = (time.monotonic(), user_id, room.key.document_id)
        _track_live(tracker, "live_session_joined", {"document_id": room.key.document_id}, user_id)

    def left(_hub: Any, room: Any, connection: Any) -> None:
        joined_at = tracker.live_joins.pop(id(connection), None)
        if joined_at is None:
            return
        seconds = round(time.monotonic() - joined_at[0], 1)
        properties = {"document_id": joined_at[2], "seconds": seconds}
        _track_live(tracker, "live_session_ended", properties, joined_at[1])

    def committed(hub: Any, room: Any, commit: str) -> None:
        try:
            author = hub.store.open(room.repo_id).commit(commit).author.email
        except Exception:  # noqa: BLE001
            author = None
        properties = {"source": "live", "document_id": room.key.document_id}
        if enabled(app):
            tracker.enqueue(
                PendingEvent("commit_made", properties, None, utcnow(), author_email=author)
            )

    hub.add_hook("after_join", joined)
    hub.add_hook("after_leave", left)
    hub.add_hook("after_commit", committed)


def _track_live(tracker: Tracker, name: str, properties: dict[str, Any], user_id: Any) -> None:
    if has_request_context():
        track(name, properties, user=user_id)
    elif enabled(tracker.app):
        tracker.enqueue(PendingEvent(name, properties, user_id, utcnow()))


def _on_ref_updated(
    document: Any, *, actor: Any = None, ref: str = "", new: str = "", source: str = "", **_: Any
) -> None:
    """``commit_made`` for every branch a save (web, API) or a push moved."""
    if source in ("web", "api", "push") and ref.startswith("refs/heads/") and new.strip("0"):
        track("commit_made", {"source": source, "document_id": document.id}, user=actor)


def init_app(app: Flask) -> None:
    """Register the tracking hooks."""
    from app.activity.signals import ref_updated

    # Records still queued by an earlier application in this process (tests build
    # one per test) are written now, before the new one starts with its own.
    flush()
    tracker = Tracker(app)
    app.extensions["quire.analytics"] = tracker
    _trackers.add(tracker)
    app.after_request(_after_request)
    app.add_template_global(script_enabled, "analytics_script_enabled")
    ref_updated.connect(_on_ref_updated, weak=False)
    _live_hooks(app, tracker)
