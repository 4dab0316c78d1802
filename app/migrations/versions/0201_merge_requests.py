"""merge requests, reviews, merge settings; merge rules on branch protection

Revision ID: 0201_merge_requests
Revises: 0104_search
Create Date: 2026-11-26 16:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0201_merge_requests"
down_revision = "0104_search"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def _user(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.Integer(), sa.ForeignKey("users.id"), nullable=nullable)


def _mr() -> sa.Column:
    return sa.Column(
        "merge_request_id",
        sa.Integer(),
        sa.ForeignKey("merge_requests.id", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "merge_requests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "document_id",
            sa.Integer(),
            sa.ForeignKey("documents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        _user("author_id"),
        sa.Column("source_branch", sa.String(255), nullable=False),
        sa.Column("target_branch", sa.String(255), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("draft", sa.Boolean(), nullable=False),
        sa.Column("head_oid", sa.String(40), nullable=False),
        sa.Column("base_oid", sa.String(40), nullable=True),
        sa.Column("mergeability", sa.String(20), nullable=False),
        sa.Column("conflicts", sa.JSON(), nullable=False),
        sa.Column("merge_style", sa.String(10), nullable=True),
        sa.Column("merge_commit", sa.String(40), nullable=True),
        sa.Column("merged_from", sa.String(40), nullable=True),
        _user("merged_by_id", nullable=True),
        sa.Column("merged_at", _TS, nullable=True),
        sa.Column("closed_at", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.UniqueConstraint("document_id", "number"),
    )
    op.create_index("ix_merge_requests_document_state", "merge_requests", ["document_id", "state"])
    op.create_index("ix_merge_requests_author_id", "merge_requests", ["author_id"])
    op.create_table(
        "merge_request_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        _mr(),
        sa.Column("kind", sa.String(30), nullable=False),
        _user("actor_id", nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index(
        "ix_merge_request_events_merge_request_id", "merge_request_events", ["merge_request_id"]
    )
    op.create_table(
        "review_threads",
        sa.Column("id", sa.Integer(), primary_key=True),
        _mr(),
        sa.Column("path", sa.String(1024), nullable=True),
        sa.Column("side", sa.String(3), nullable=True),
        sa.Column("line_start", sa.Integer(), nullable=True),
        sa.Column("line_end", sa.Integer(), nullable=True),
        sa.Column("commit_oid", sa.String(40), nullable=True),
        sa.Column("anchor_text", sa.Text(), nullable=True),
        sa.Column("outdated", sa.Boolean(), nullable=False),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        _user("resolved_by_id", nullable=True),
        _user("author_id"),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_review_threads_merge_request_id", "review_threads", ["merge_request_id"])
    op.create_table(
        "review_comments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "thread_id",
            sa.Integer(),
            sa.ForeignKey("review_threads.id", ondelete="CASCADE"),
            nullable=False,
        ),
        _user("author_id"),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("edited_at", _TS, nullable=True),
    )
    op.create_index("ix_review_comments_thread_id", "review_comments", ["thread_id"])
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), primary_key=True),
        _mr(),
        _user("reviewer_id"),
        sa.Column("verdict", sa.String(20), nullable=False),
        sa.Column("commit_oid", sa.String(40), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("dismissed", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_reviews_merge_request_id", "reviews", ["merge_request_id"])
    op.create_table(
        "review_requests",
        sa.Column("id", sa.Integer(), primary_key=True),
        _mr(),
        _user("reviewer_id"),
        _user("requested_by_id"),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("merge_request_id", "reviewer_id"),
    )
    op.create_index("ix_review_requests_merge_request_id", "review_requests", ["merge_request_id"])
    op.create_index("ix_review_requests_reviewer_id", "review_requests", ["reviewer_id"])
    op.create_table(
        "merge_settings",
        sa.Column(
            "document_id",
            sa.Integer(),
            sa.ForeignKey("documents.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("default_style", sa.String(10), nullable=False),
        sa.Column("next_number", sa.Integer(), nullable=False),
    )
    # Plain ADD COLUMN (constant defaults): SQLite needs no table rebuild for these.
    add = op.add_column
    add("branch_protections", sa.Column("required_approvals", sa.Integer(), nullable=False,
                                        server_default="0"))  # fmt: skip
    for flag in ("block_unresolved", "block_behind", "reset_approvals"):
        add(
            "branch_protections",
            sa.Column(flag, sa.Boolean(), nullable=False, server_default=sa.false()),
        )
    add("branch_protections", sa.Column("live_role", sa.String(20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("branch_protections") as batch:
        for name in (
            "live_role", "reset_approvals", "block_behind", "block_unresolved",
            "required_approvals",
        ):  # fmt: skip
            batch.drop_column(name)
    for table in (
        "merge_settings", "review_requests", "reviews", "review_comments", "review_threads",
        "merge_request_events", "merge_requests",
    ):  # fmt: skip
        op.drop_table(table)
