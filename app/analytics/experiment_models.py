"""The sticky assignment of one participant to one variant of one experiment."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utcnow

BigId = BigInteger().with_variant(Integer, "sqlite")


class Assignment(Base):
    """A participant is a user, or a visitor token before sign-up (then carried over).

    The row is written the first time a variant is chosen for the participant, so
    later visits, other workers and other processes all show the same variant;
    ``exposed_at`` is when the variant was first actually shown, the moment from
    which conversions count.
    """

    __tablename__ = "analytics_experiment_assignments"
    __table_args__ = (
        UniqueConstraint("experiment", "user_id", name="uq_analytics_assignments_user"),
        UniqueConstraint("experiment", "visitor_token", name="uq_analytics_assignments_visitor"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    experiment: Mapped[str] = mapped_column(String(100))
    variant: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True
    )
    visitor_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    exposed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
