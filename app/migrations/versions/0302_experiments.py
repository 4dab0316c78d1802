"""analytics: experiment assignments, dashboard rollups, storage samples

Assignments are one row per participant (a user, or a visitor token before sign
up) and experiment, so a variant never changes under someone's feet. The rollup
tables hold events per quarter-hour slot (epoch seconds // 900) and user: every
IANA time zone's day starts on a quarter-hour, so local days, weeks and months
are exact sums of slots, and the dashboard never rescans a million events.
Bucket counts keep the distinct users and events of each closed local day, week
and month per time zone; new events invalidate the buckets they fall into.

Revision ID: 0302_experiments
Revises: 0301_analytics
Create Date: 2026-11-26 16:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0302_experiments"
down_revision = "0301_analytics"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "analytics_experiment_assignments",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("experiment", sa.String(100), nullable=False),
        sa.Column("variant", sa.String(100), nullable=False),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column("visitor_token", sa.String(64), nullable=True),
        sa.Column("assigned_at", _TS, nullable=False),
        sa.Column("exposed_at", _TS, nullable=True),
        sa.UniqueConstraint("experiment", "user_id", name="uq_analytics_assignments_user"),
        sa.UniqueConstraint("experiment", "visitor_token", name="uq_analytics_assignments_visitor"),
    )
    op.create_index(
        "ix_analytics_experiment_assignments_user_id",
        "analytics_experiment_assignments",
        ["user_id"],
    )
    op.create_table(
        "analytics_rollup_state",
        sa.Column("name", sa.String(50), primary_key=True),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.Column("rolled_events", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "analytics_active_slots",
        sa.Column("slot", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), primary_key=True),
        sa.Column("events", sa.Integer(), nullable=False),
    )
    op.create_index("ix_analytics_active_slots_user", "analytics_active_slots", ["user_id", "slot"])
    op.create_table(
        "analytics_feature_slots",
        sa.Column("slot", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("user_id", sa.Integer(), primary_key=True),
        sa.Column("events", sa.Integer(), nullable=False),
    )
    op.create_table(
        "analytics_document_slots",
        sa.Column("slot", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("document", sa.String(100), primary_key=True),
        sa.Column("user_id", sa.Integer(), primary_key=True),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
    )
    op.create_index(
        "ix_analytics_document_slots_name_slot", "analytics_document_slots", ["name", "slot"]
    )
    # Funnel steps and experiment conversions look up one person's (or visitor's)
    # first event of a name after a moment: these answer it from the index alone.
    op.create_index(
        "ix_analytics_events_name_user_id_time", "analytics_events", ["name", "user_id", "time"]
    )
    op.create_index(
        "ix_analytics_events_name_visitor_time",
        "analytics_events",
        ["name", "visitor_token", "time"],
    )
    op.create_table(
        "analytics_bucket_counts",
        sa.Column("zone", sa.String(64), primary_key=True),
        sa.Column("grain", sa.String(8), primary_key=True),
        sa.Column("bucket", sa.Date(), primary_key=True),
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("users", sa.Integer(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("slot_hi", sa.Integer(), nullable=False),
    )
    op.create_index("ix_analytics_bucket_counts_slot_hi", "analytics_bucket_counts", ["slot_hi"])
    op.create_table(
        "analytics_storage_samples",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("documents", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("analytics_storage_samples")
    op.drop_index("ix_analytics_bucket_counts_slot_hi", table_name="analytics_bucket_counts")
    op.drop_table("analytics_bucket_counts")
    op.drop_index("ix_analytics_events_name_visitor_time", table_name="analytics_events")
    op.drop_index("ix_analytics_events_name_user_id_time", table_name="analytics_events")
    op.drop_index("ix_analytics_document_slots_name_slot", table_name="analytics_document_slots")
    op.drop_table("analytics_document_slots")
    op.drop_table("analytics_feature_slots")
    op.drop_index("ix_analytics_active_slots_user", table_name="analytics_active_slots")
    op.drop_table("analytics_active_slots")
    op.drop_table("analytics_rollup_state")
    op.drop_index(
        "ix_analytics_experiment_assignments_user_id",
        table_name="analytics_experiment_assignments",
    )
    op.drop_table("analytics_experiment_assignments")
