"""The privacy rules of analytics: what is never stored, and what a user may take back.

- IP addresses are masked before they are queued (IPv4 to /24, IPv6 to /48) unless
  ``ANALYTICS_MASK_IP`` is off: enough for a country, not for a household.
- ``DNT: 1`` and ``Sec-GPC: 1`` mean nothing about the request is stored.
- A user may opt out (``analytics_preferences``); the background writer drops every
  visit and event of an opted-out user, so the rule holds in every process at once.
- Cookieless mode replaces the visitor cookie with a keyed hash of (masked IP, user
  agent, day) that rotates daily; neither input is recoverable from it.
- Retention: :func:`purge` deletes visits and events older than N days.
- A user's data can be exported (:func:`export_user`) and deleted (:func:`delete_user_data`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from app.analytics.experiment_models import Assignment
from app.analytics.models import Event, Preference, Visit
from app.db import utcnow

#: Rows deleted per statement by :func:`purge`: short transactions, no long table locks.
PURGE_CHUNK = 10_000


def mask_ip(address: str | None) -> str | None:
    """The network an address belongs to: IPv4 last octet zeroed, IPv6 cut to /48."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)


def refuses_tracking(headers: Mapping[str, str]) -> bool:
    """The browser asked not to be tracked (Do Not Track or Global Privacy Control)."""
    return headers.get("DNT", "").strip() == "1" or headers.get("Sec-GPC", "").strip() == "1"


def cookieless_visitor_token(masked_ip: str | None, user_agent: str, day: date, secret: str) -> str:
    """A visitor id that needs no cookie: an HMAC that changes every day.

    The same browser on the same network is one visitor for one day; the next day it
    is a new one, so nobody can be followed over time and the inputs are not stored.
    """
    message = f"{day.isoformat()}|{masked_ip or ''}|{user_agent}".encode()
    key = hashlib.sha256(b"quire-analytics-visitor|" + secret.encode()).digest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


# --- opt-out ------------------------------------------------------------------------


def opted_out_among(session: Session, user_ids: Iterable[int]) -> set[int]:
    """Which of these users have opted out (one query)."""
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return set()
    return set(
        session.scalars(
            select(Preference.user_id).where(
                Preference.user_id.in_(ids), Preference.opted_out.is_(True)
            )
        )
    )


def is_opted_out(session: Session, user_id: int) -> bool:
    preference = session.get(Preference, user_id)
    return bool(preference and preference.opted_out)


def set_opted_out(session: Session, user_id: int, opted_out: bool) -> None:
    preference = session.get(Preference, user_id)
    if preference is None:
        preference = Preference(user_id=user_id)
        session.add(preference)
    preference.opted_out = opted_out
    preference.updated_at = utcnow()
    session.commit()


# --- retention ----------------------------------------------------------------------


def purge(session: Session, days: int, *, now: datetime | None = None) -> tuple[int, int]:
    """Delete events and visits older than ``days``; returns (visits, events) deleted.

    Events go by their own time; a newer event of an older visit is kept and loses
    only its visit link (``ON DELETE SET NULL``).
    """
    if days < 1:
        raise ValueError("the retention period must be at least one day")
    cutoff = (now or utcnow()) - timedelta(days=days)
    events = _delete_chunked(session, Event, Event.time < cutoff)
    visits = _delete_chunked(session, Visit, Visit.started_at < cutoff)
    return visits, events


def _delete_chunked(session: Session, model: type[Visit] | type[Event], condition: Any) -> int:
    total = 0
    while True:
        ids = list(session.scalars(select(model.id).where(condition).limit(PURGE_CHUNK)))
        if not ids:
            return total
        session.execute(delete(model).where(model.id.in_(ids)))
        session.commit()
        total += len(ids)


# --- one user's data ----------------------------------------------------------------


def _user_visit_ids(session: Session, user_id: int) -> list[int]:
    return list(session.scalars(select(Visit.id).where(Visit.user_id == user_id)))


def _user_events(user_id: int, visit_ids: list[int]) -> Any:
    condition = Event.user_id == user_id
    if visit_ids:
        condition = or_(condition, Event.visit_id.in_(visit_ids))
    return condition


VISIT_FIELDS = (
    "visit_token",
    "visitor_token",
    "ip",
    "user_agent",
    "referrer",
    "referring_domain",
    "landing_page",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "browser",
    "os",
    "device_type",
)


def export_user(session: Session, user_id: int) -> dict[str, Any]:
    """Everything analytics holds about one user, as JSON-ready data.

    Their visits, and every event that is theirs or happened in one of their visits
    (including the page views before they logged in during that visit).
    """
    visits = list(session.scalars(select(Visit).where(Visit.user_id == user_id).order_by(Visit.id)))
    visit_ids = [v.id for v in visits]
    events = session.scalars(
        select(Event).where(_user_events(user_id, visit_ids)).order_by(Event.time, Event.id)
    )
    return {
        "user_id": user_id,
        "opted_out": is_opted_out(session, user_id),
        "exported_at": utcnow().isoformat(),
        "visits": [
            {
                "id": v.id,
                **{name: getattr(v, name) for name in VISIT_FIELDS},
                "started_at": v.started_at.isoformat(),
                "last_seen_at": v.last_seen_at.isoformat(),
            }
            for v in visits
        ],
        "events": [
            {
                "id": e.id,
                "visit_id": e.visit_id,
                "name": e.name,
                "properties": e.properties,
                "time": e.time.isoformat(),
            }
            for e in events
        ],
        "experiments": [
            {
                "experiment": a.experiment,
                "variant": a.variant,
                "assigned_at": a.assigned_at.isoformat(),
                "exposed_at": a.exposed_at.isoformat() if a.exposed_at else None,
            }
            for a in session.scalars(
                select(Assignment).where(Assignment.user_id == user_id).order_by(Assignment.id)
            )
        ],
    }


def delete_user_data(session: Session, user_id: int) -> tuple[int, int]:
    """Delete one user's visits and events (as :func:`export_user` finds them).

    Returns (visits, events) deleted. The opt-out choice itself is kept: deleting
    the data must not silently start tracking again.
    """
    from app.analytics.rollups import forget_user

    visit_ids = _user_visit_ids(session, user_id)
    events = session.execute(delete(Event).where(_user_events(user_id, visit_ids))).rowcount
    visits = session.execute(delete(Visit).where(Visit.user_id == user_id)).rowcount
    forget_user(session, user_id)  # the rollups and experiment assignments name them too
    session.commit()
    return visits or 0, events or 0
