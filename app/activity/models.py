"""The activity log: one row per event (for the activity feed and analytics)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow


class ActivityEvent(Base):
    __tablename__ = "activity_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    #: Who did it; None for anonymous or system actions (and after the account is gone).
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True, index=True
    )
    kind: Mapped[str] = mapped_column(String(32))  # 'push', 'save', …
    ref: Mapped[str | None] = mapped_column(String(255), nullable=True)
    old_oid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    new_oid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
