"""Rollups: events per quarter-hour slot and user, refreshed incrementally.

Why: the dashboard asks for distinct users per local day, week and month in any
time zone. Scanning a million raw events for each figure costs seconds; the
rollups hold one row per (slot, user) and (slot, feature, user), which a session
of many events collapses into, and a local day is an exact range of slots because
every time zone in use today starts its days on a quarter-hour.

``refresh`` adds the events written since the last refresh (by id, with
compare-and-swap on the watermark, so two workers never count an event twice).
Events removed by retention or by a user's delete request leave fewer events
below the watermark than were counted: the next check notices and rebuilds.
"""

from __future__ import annotations

import logging
import time as _time
from datetime import UTC, date, datetime, timedelta

import click
from flask.cli import with_appcontext
from sqlalchemy import BigInteger, Date, Float, Index, Integer, String, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.db import Base, UTCDateTime, utcnow

log = logging.getLogger(__name__)

#: Seconds per slot: the largest unit every current UTC offset is a multiple of.
SLOT_SECONDS = 900
SLOTS_PER_DAY = 86400 // SLOT_SECONDS
STATE_NAME = "events"


class RollupState(Base):
    """How far the rollups have read: every event with ``id <= last_event_id``."""

    __tablename__ = "analytics_rollup_state"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(BigInteger)
    rolled_events: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ActiveSlot(Base):
    """A signed-in user did something (anything tracked) in this slot."""

    __tablename__ = "analytics_active_slots"

    slot: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    events: Mapped[int] = mapped_column(Integer)


class FeatureSlot(Base):
    """Events of one name in one slot by one user (``user_id`` 0: not signed in, or a
    page view, which is counted without its viewer)."""

    __tablename__ = "analytics_feature_slots"

    slot: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    events: Mapped[int] = mapped_column(Integer)


class DocumentSlot(Base):
    """Events about one document (by id or slug, as the event named it) in one slot."""

    __tablename__ = "analytics_document_slots"
    __table_args__ = (Index("ix_analytics_document_slots_name_slot", "name", "slot"),)

    slot: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    document: Mapped[str] = mapped_column(String(100), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    events: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(Float)  # live_session_ended's session lengths


class BucketCount(Base):
    """Distinct users and events of one closed local day, week or month (``name`` ''
    means any activity). Filled by :mod:`app.analytics.buckets`, invalidated here."""

    __tablename__ = "analytics_bucket_counts"

    zone: Mapped[str] = mapped_column(String(64), primary_key=True)
    grain: Mapped[str] = mapped_column(String(8), primary_key=True)
    bucket: Mapped[date] = mapped_column(Date, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    users: Mapped[int] = mapped_column(Integer)
    events: Mapped[int] = mapped_column(BigInteger)
    slot_hi: Mapped[int] = mapped_column(Integer, index=True)


class StorageSample(Base):
    """The repositories' total size on a day: the history the capacity forecast fits."""

    __tablename__ = "analytics_storage_samples"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    bytes: Mapped[int] = mapped_column(BigInteger)
    documents: Mapped[int] = mapped_column(Integer)


def slot_of(moment: datetime) -> int:
    """The slot holding ``moment`` (floor)."""
    return int(moment.timestamp()) // SLOT_SECONDS


def slot_start(slot: int) -> datetime:
    return datetime.fromtimestamp(slot * SLOT_SECONDS, UTC)


def epoch_sql(dialect: str, column: str) -> str:
    """Whole seconds since the epoch of a timestamp column, in ``dialect``'s SQL."""
    if dialect == "postgresql":
        return f"CAST(FLOOR(EXTRACT(EPOCH FROM {column})) AS BIGINT)"
    return f"CAST(strftime('%s', {column}) AS INTEGER)"


def slot_sql(dialect: str, column: str) -> str:
    return f"({epoch_sql(dialect, column)} / {SLOT_SECONDS})"


# --- refreshing -----------------------------------------------------------------------

_last_check: dict[str, float] = {}


def refresh(session: Session, *, lag_seconds: float = 0.0, check_every: float = 300.0) -> int:
    """Roll up the events written since the last refresh; return how many were added.

    ``lag_seconds`` leaves the newest events for the next refresh: a batch still
    being committed by another worker may hold lower ids than one already visible,
    and a watermark that passed them would never count them.
    """
    dialect = session.get_bind().dialect.name
    key = str(session.get_bind().url)
    now = _time.monotonic()
    if now - _last_check.get(key, float("-inf")) >= check_every:
        _last_check[key] = now
        if _lost_events(session):
            log.info("analytics events were removed; rebuilding the rollups")
            rebuild(session)
            return 0
    state = _state(session)
    low = state.last_event_id
    if lag_seconds > 0:
        cutoff = datetime.now(UTC) - timedelta(seconds=lag_seconds)
        high = session.execute(
            text("SELECT MAX(id) FROM analytics_events WHERE time < :cutoff"), {"cutoff": cutoff}
        ).scalar()
    else:
        high = session.execute(text("SELECT MAX(id) FROM analytics_events")).scalar()
    if high is None or high <= low:
        session.rollback()
        return 0
    count = int(
        session.execute(
            text("SELECT COUNT(*) FROM analytics_events WHERE id > :low AND id <= :high"),
            {"low": low, "high": high},
        ).scalar()
        or 0
    )
    # Compare-and-swap first: a concurrent refresh either finished (we see its
    # watermark and stop) or waits on this row until we commit.
    moved = session.execute(
        text(
            "UPDATE analytics_rollup_state SET last_event_id = :high,"
            " rolled_events = rolled_events + :count, updated_at = :now"
            " WHERE name = :name AND last_event_id = :low"
        ),
        {"high": high, "low": low, "count": count, "now": datetime.now(UTC), "name": STATE_NAME},
    ).rowcount
    if moved != 1:
        session.rollback()
        return 0
    _roll(session, dialect, low, high)
    _roll_documents(session, dialect, low, high)
    # Buckets that end after the oldest new event were counted without it.
    oldest = session.execute(
        text(
            f"SELECT MIN({slot_sql(dialect, 'time')}) FROM analytics_events"
            " WHERE id > :low AND id <= :high"
        ),
        {"low": low, "high": high},
    ).scalar()
    if oldest is not None:
        session.execute(
            text("DELETE FROM analytics_bucket_counts WHERE slot_hi > :oldest"),
            {"oldest": int(oldest)},
        )
    session.commit()
    return count


def _roll(session: Session, dialect: str, low: int, high: int) -> None:
    slot = slot_sql(dialect, "time")
    # Page views are counted, not attributed: they are half of all events, and who
    # viewed pages is already in the active slots.
    user = "CASE WHEN name = 'page_view' THEN 0 ELSE COALESCE(user_id, 0) END"
    params = {"low": low, "high": high}
    session.execute(
        text(
            "INSERT INTO analytics_active_slots (slot, user_id, events)"
            f" SELECT {slot} AS s, user_id, COUNT(*) FROM analytics_events"
            " WHERE id > :low AND id <= :high AND user_id IS NOT NULL"
            f" GROUP BY {slot}, user_id"
            " ON CONFLICT (slot, user_id) DO UPDATE"
            " SET events = analytics_active_slots.events + excluded.events"
        ),
        params,
    )
    session.execute(
        text(
            "INSERT INTO analytics_feature_slots (slot, name, user_id, events)"
            f" SELECT {slot} AS s, name, {user} AS u, COUNT(*)"
            " FROM analytics_events WHERE id > :low AND id <= :high"
            f" GROUP BY {slot}, name, {user}"
            " ON CONFLICT (slot, name, user_id) DO UPDATE"
            " SET events = analytics_feature_slots.events + excluded.events"
        ),
        params,
    )


#: Events that name a document and feed the audience and success pages.
DOCUMENT_EVENTS = (
    "document_opened",
    "commit_made",
    "live_session_joined",
    "live_session_ended",
    "branch_created",
    "mr_opened",
    "release_tagged",
)


def json_text(dialect: str, key: str, column: str = "properties") -> str:
    """A JSON property as text (``key`` is ours, never user input)."""
    assert key.isidentifier()
    if dialect == "postgresql":
        return f"({column} ->> '{key}')"
    return f"CAST(json_extract({column}, '$.{key}') AS TEXT)"


def document_key_sql(dialect: str) -> str:
    """Events name their document by id (``document_id``) or slug (``document``)."""
    return f"COALESCE({json_text(dialect, 'document_id')}, {json_text(dialect, 'document')})"


def _roll_documents(session: Session, dialect: str, low: int, high: int) -> None:
    slot = slot_sql(dialect, "time")
    key = document_key_sql(dialect)
    seconds = f"CAST({json_text(dialect, 'seconds')} AS FLOAT)"
    names = ", ".join(f"'{n}'" for n in DOCUMENT_EVENTS)
    session.execute(
        text(
            "INSERT INTO analytics_document_slots (slot, name, document, user_id, events, seconds)"
            f" SELECT {slot} AS s, name, SUBSTR({key}, 1, 100) AS d, COALESCE(user_id, 0) AS u,"
            f" COUNT(*), COALESCE(SUM({seconds}), 0) FROM analytics_events"
            f" WHERE id > :low AND id <= :high AND name IN ({names}) AND {key} IS NOT NULL"
            f" GROUP BY {slot}, name, SUBSTR({key}, 1, 100), COALESCE(user_id, 0)"
            " ON CONFLICT (slot, name, document, user_id) DO UPDATE"
            " SET events = analytics_document_slots.events + excluded.events,"
            " seconds = analytics_document_slots.seconds + excluded.seconds"
        ),
        {"low": low, "high": high},
    )


def _state(session: Session) -> RollupState:
    state = session.get(RollupState, STATE_NAME)
    if state is None:
        session.execute(
            text(
                "INSERT INTO analytics_rollup_state (name, last_event_id, rolled_events,"
                " updated_at) VALUES (:name, 0, 0, :now) ON CONFLICT (name) DO NOTHING"
            ),
            {"name": STATE_NAME, "now": datetime.now(UTC)},
        )
        state = session.get(RollupState, STATE_NAME)
    assert state is not None
    session.expunge(state)  # read its values now; the CAS update goes through SQL
    return state


def _lost_events(session: Session) -> bool:
    """True when fewer events lie below the watermark than were rolled up."""
    state = session.get(RollupState, STATE_NAME)
    if state is None or state.last_event_id == 0:
        return False
    present = session.execute(
        text("SELECT COUNT(*) FROM analytics_events WHERE id <= :last"),
        {"last": state.last_event_id},
    ).scalar()
    return int(present or 0) < state.rolled_events


def watermark(session: Session) -> int:
    """The last event id the rollups include (0 before the first refresh)."""
    value = session.execute(
        text("SELECT last_event_id FROM analytics_rollup_state WHERE name = :name"),
        {"name": STATE_NAME},
    ).scalar()
    return int(value or 0)


def rebuild(session: Session) -> int:
    """Forget every rollup row and read all events again (after deletions)."""
    session.execute(text("DELETE FROM analytics_active_slots"))
    session.execute(text("DELETE FROM analytics_feature_slots"))
    session.execute(text("DELETE FROM analytics_document_slots"))
    session.execute(text("DELETE FROM analytics_bucket_counts"))
    session.execute(text("DELETE FROM analytics_rollup_state"))
    session.commit()
    return refresh(session, check_every=float("inf"))


def forget_user(session: Session, user_id: int) -> None:
    """Remove one person's rows from the rollups and experiments (their data request).

    Call it with the deletion of their events; the stored bucket counts hold no user
    ids, and the next refresh rebuilds everything from the events that remain.
    """
    for table in (
        "analytics_active_slots",
        "analytics_feature_slots",
        "analytics_document_slots",
        "analytics_experiment_assignments",
    ):
        session.execute(text(f"DELETE FROM {table} WHERE user_id = :u"), {"u": user_id})
    session.execute(text("DELETE FROM analytics_bucket_counts"))
    _last_check.clear()  # check for removed events at the next refresh


@click.command("rollup")
@click.option(
    "--rebuild", "from_scratch", is_flag=True, help="Forget the rollups and read every event again."
)
@with_appcontext
def rollup_command(from_scratch: bool) -> None:
    """Bring the dashboard's rollups up to date (run after purging or deleting events)."""
    from app import db

    session = db.session()
    started = _time.monotonic()
    added = rebuild(session) if from_scratch else refresh(session, check_every=0)
    click.echo(f"rolled up {added} events in {_time.monotonic() - started:.1f} s")
