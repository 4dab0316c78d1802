"""Annotations: comments on a version (a commit) of a document, in threads.

Git holds the versions; these rows hold only the conversation about them. A row
names its commit by id, so an annotation stays attached to that exact version
whatever happens to the branches that contained it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.accounts.models import User
from app.db import Base, UTCDateTime, utcnow

#: Longest annotation body accepted (Markdown source), in characters.
MAX_BODY = 20_000


class Annotation(Base):
    """One comment on a commit; ``thread_id`` is None for a thread's first comment.

    Replies all point at the first comment (one level, as in most review tools), so a
    thread reads top to bottom in creation order.
    """

    __tablename__ = "annotations"
    __table_args__ = (Index("ix_annotations_document_commit", "document_id", "commit_oid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    commit_oid: Mapped[str] = mapped_column(String(40))
    thread_id: Mapped[int | None] = mapped_column(
        ForeignKey("annotations.id", ondelete="CASCADE"), nullable=True, index=True
    )
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Set when the author edits the body (shown as "edited").
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    author: Mapped[User] = relationship()

    @property
    def is_reply(self) -> bool:
        return self.thread_id is not None
