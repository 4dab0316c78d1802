"""analytics: visits, events, per-user preferences

Events get (name, time), (user_id, time) and (time) indexes for the dashboard's
range scans, and a GIN index on ``properties`` on PostgreSQL (JSONB there).

Revision ID: 0301_analytics
Revises: 0104_search
Create Date: 2026-11-26 16:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0301_analytics"
down_revision = "0104_search"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _user(ondelete: str) -> sa.Column:
    return sa.Column(
        "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete=ondelete), nullable=True
    )


def upgrade() -> None:
    op.create_table(
        "analytics_visits",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("visit_token", sa.String(64), nullable=False),
        sa.Column("visitor_token", sa.String(64), nullable=False),
        _user("SET NULL"),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.Column("referrer", sa.Text(), nullable=True),
        sa.Column("referring_domain", sa.String(255), nullable=True),
        sa.Column("landing_page", sa.Text(), nullable=True),
        sa.Column("utm_source", sa.String(255), nullable=True),
        sa.Column("utm_medium", sa.String(255), nullable=True),
        sa.Column("utm_campaign", sa.String(255), nullable=True),
        sa.Column("utm_term", sa.String(255), nullable=True),
        sa.Column("utm_content", sa.String(255), nullable=True),
        sa.Column("browser", sa.String(50), nullable=True),
        sa.Column("os", sa.String(50), nullable=True),
        sa.Column("device_type", sa.String(20), nullable=True),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("last_seen_at", _TS, nullable=False),
        sa.UniqueConstraint("visit_token"),
    )
    op.create_index("ix_analytics_visits_visitor_token", "analytics_visits", ["visitor_token"])
    op.create_index("ix_analytics_visits_user_id", "analytics_visits", ["user_id"])
    op.create_index("ix_analytics_visits_started_at", "analytics_visits", ["started_at"])

    properties = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    op.create_table(
        "analytics_events",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "visit_id",
            _ID,
            sa.ForeignKey("analytics_visits.id", ondelete="SET NULL"),
            nullable=True,
        ),
        _user("SET NULL"),
        sa.Column("visitor_token", sa.String(64), nullable=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("properties", properties, nullable=False),
        sa.Column("time", _TS, nullable=False),
    )
    op.create_index("ix_analytics_events_visit_id", "analytics_events", ["visit_id"])
    op.create_index("ix_analytics_events_name_time", "analytics_events", ["name", "time"])
    op.create_index("ix_analytics_events_user_id_time", "analytics_events", ["user_id", "time"])
    op.create_index("ix_analytics_events_time", "analytics_events", ["time"])
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_analytics_events_properties",
            "analytics_events",
            ["properties"],
            postgresql_using="gin",
        )

    op.create_table(
        "analytics_preferences",
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("analytics_preferences")
    op.drop_table("analytics_events")  # drops its indexes with it
    op.drop_table("analytics_visits")
