"""Merge requests and their reviews.

Git holds the content: a request names its source and target branches and pins the
reviewed head at ``refs/merge-requests/<number>/head``. These rows hold what Git
cannot: the conversation, the approvals, and the state of the request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.accounts.models import User
from app.db import Base, UTCDateTime, utcnow
from app.documents.models import Document

STATES = ("open", "merged", "closed")
MERGE_STYLES = ("merge", "squash", "ff")
#: Mergeability, as computed after every head change (see services.mergeability).
MERGEABILITY = ("mergeable", "conflicts", "needs_approvals", "unresolved_threads", "behind",
                "draft", "up_to_date", "checking")  # fmt: skip


class MergeRequest(Base):
    __tablename__ = "merge_requests"
    __table_args__ = (
        UniqueConstraint("document_id", "number"),
        Index("ix_merge_requests_document_state", "document_id", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    #: Per document, from 1, never reused.
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    source_branch: Mapped[str] = mapped_column(String(255))
    target_branch: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(10), default="open")
    draft: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The source head last seen (also at refs/merge-requests/<n>/head).
    head_oid: Mapped[str] = mapped_column(String(40))
    #: The merge base with the target when the head was last refreshed.
    base_oid: Mapped[str | None] = mapped_column(String(40), nullable=True)
    #: One of MERGEABILITY, recomputed when either branch moves.
    mergeability: Mapped[str] = mapped_column(String(20), default="checking")
    #: Paths that still conflict after the prose-aware merge.
    conflicts: Mapped[list[str]] = mapped_column(JSON, default=list)
    merge_style: Mapped[str | None] = mapped_column(String(10), nullable=True)
    merge_commit: Mapped[str | None] = mapped_column(String(40), nullable=True)
    #: The target head just before the merge (what a revert goes back to).
    merged_from: Mapped[str | None] = mapped_column(String(40), nullable=True)
    merged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    merged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    document: Mapped[Document] = relationship()
    author: Mapped[User] = relationship(foreign_keys=[author_id])
    merged_by: Mapped[User | None] = relationship(foreign_keys=[merged_by_id])

    @property
    def head_ref(self) -> str:
        return f"refs/merge-requests/{self.number}/head"


class MergeRequestEvent(Base):
    """The timeline: opened, pushed, review_requested, reviewed, commented, approved,
    changes_requested, resolved, unresolved, merged, closed, reopened, reverted."""

    __tablename__ = "merge_request_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merge_request_id: Mapped[int] = mapped_column(
        ForeignKey("merge_requests.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(30))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    actor: Mapped[User | None] = relationship()


class ReviewThread(Base):
    """A conversation: on a line or range of the diff (``path`` set), or general."""

    __tablename__ = "review_threads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merge_request_id: Mapped[int] = mapped_column(
        ForeignKey("merge_requests.id", ondelete="CASCADE"), index=True
    )
    path: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    #: 'new' (a line of the source side) or 'old' (a removed line of the target side).
    side: Mapped[str | None] = mapped_column(String(3), nullable=True)
    line_start: Mapped[int | None] = mapped_column(Integer, nullable=True)
    line_end: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: The head the comment was made on, and the text of its lines then.
    commit_oid: Mapped[str | None] = mapped_column(String(40), nullable=True)
    anchor_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    outdated: Mapped[bool] = mapped_column(Boolean, default=False)
    resolved: Mapped[bool] = mapped_column(Boolean, default=False)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    author: Mapped[User] = relationship(foreign_keys=[author_id])
    resolved_by: Mapped[User | None] = relationship(foreign_keys=[resolved_by_id])
    comments: Mapped[list[ReviewComment]] = relationship(
        back_populates="thread", cascade="all, delete-orphan", order_by="ReviewComment.id"
    )


class ReviewComment(Base):
    __tablename__ = "review_comments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    thread_id: Mapped[int] = mapped_column(
        ForeignKey("review_threads.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    author: Mapped[User] = relationship()
    thread: Mapped[ReviewThread] = relationship(back_populates="comments")


class Review(Base):
    """A reviewer's verdict on one head: 'approved' or 'changes_requested'.

    ``dismissed`` is set when new commits reset approvals (a protection option).
    """

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merge_request_id: Mapped[int] = mapped_column(
        ForeignKey("merge_requests.id", ondelete="CASCADE"), index=True
    )
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    verdict: Mapped[str] = mapped_column(String(20))
    commit_oid: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text, default="")
    dismissed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    reviewer: Mapped[User] = relationship()


class ReviewRequest(Base):
    __tablename__ = "review_requests"
    __table_args__ = (UniqueConstraint("merge_request_id", "reviewer_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merge_request_id: Mapped[int] = mapped_column(
        ForeignKey("merge_requests.id", ondelete="CASCADE"), index=True
    )
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    reviewer: Mapped[User] = relationship(foreign_keys=[reviewer_id])


class MergeSettings(Base):
    """Per-document merge defaults (a row only once someone changes them)."""

    __tablename__ = "merge_settings"

    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True
    )
    default_style: Mapped[str] = mapped_column(String(10), default="merge")
    next_number: Mapped[int] = mapped_column(Integer, default=1)
