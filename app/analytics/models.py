"""Analytics tables: visits, events and per-user preferences.

Modelled on Ahoy: a *visit* is one browsing session (a new one after four idle
hours), identified by a random visit token and grouped by a longer-lived visitor
token; an *event* is one named action with JSON properties. Events outlive the
request that caused them: they are written by the background writer in
:mod:`app.analytics.tracking`, never on the request path. IPs are stored masked
unless ``ANALYTICS_MASK_IP`` is off.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow

#: A 64-bit key on PostgreSQL (a million events a day for centuries); SQLite only
#: autoincrements a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer, "sqlite")
#: JSONB on PostgreSQL so ``properties`` can carry a GIN index; plain JSON elsewhere.
Properties = JSON().with_variant(JSONB, "postgresql")


class Visit(Base):
    __tablename__ = "analytics_visits"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    visit_token: Mapped[str] = mapped_column(String(64), unique=True)
    visitor_token: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True, index=True
    )
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(Text, nullable=True)
    referrer: Mapped[str | None] = mapped_column(Text, nullable=True)
    referring_domain: Mapped[str | None] = mapped_column(String(255), nullable=True)
    landing_page: Mapped[str | None] = mapped_column(Text, nullable=True)
    utm_source: Mapped[str | None] = mapped_column(String(255), nullable=True)
    utm_medium: Mapped[str | None] = mapped_column(String(255), nullable=True)
    utm_campaign: Mapped[str | None] = mapped_column(String(255), nullable=True)
    utm_term: Mapped[str | None] = mapped_column(String(255), nullable=True)
    utm_content: Mapped[str | None] = mapped_column(String(255), nullable=True)
    browser: Mapped[str | None] = mapped_column(String(50), nullable=True)
    os: Mapped[str | None] = mapped_column(String(50), nullable=True)
    device_type: Mapped[str | None] = mapped_column(String(20), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<Visit {self.id} {self.visit_token[:8]}>"


class Event(Base):
    __tablename__ = "analytics_events"
    __table_args__ = (
        Index("ix_analytics_events_name_time", "name", "time"),
        Index("ix_analytics_events_user_id_time", "user_id", "time"),
        Index("ix_analytics_events_time", "time"),
        Index("ix_analytics_events_properties", "properties", postgresql_using="gin").ddl_if(
            dialect="postgresql"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    visit_id: Mapped[int | None] = mapped_column(
        BigId,
        # An event keeps counting after retention removes its (older) visit.
        ForeignKey("analytics_visits.id", ondelete="SET NULL"),
        nullable=True,
        index=True,
    )
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    visitor_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    name: Mapped[str] = mapped_column(String(100))
    properties: Mapped[dict[str, Any]] = mapped_column(Properties, default=dict)
    time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<Event {self.id} {self.name}>"


class Preference(Base):
    """A user's analytics choice. No row means the default: tracked (unless DNT/GPC)."""

    __tablename__ = "analytics_preferences"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
