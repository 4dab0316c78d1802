"""Document metadata. The content lives in the document's bare Git repository."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.accounts.models import User
from app.db import Base, UTCDateTime, utcnow

VISIBILITIES = ("private", "public")


class Document(Base):
    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Immutable id naming the repository on disk; renames never move the repo.
    repo_id: Mapped[str] = mapped_column(String(32), unique=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True, index=True)
    title: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    visibility: Mapped[str] = mapped_column(String(10), default="private")
    default_branch: Mapped[str] = mapped_column(String(100), default="main")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: When the default branch last moved: a cache for sorting, Git is the truth.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    owner: Mapped[User] = relationship()
    memberships: Mapped[list[Membership]] = relationship(
        back_populates="document", cascade="all, delete-orphan"
    )

    @property
    def is_public(self) -> bool:
        return self.visibility == "public"


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("document_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    document: Mapped[Document] = relationship(back_populates="memberships")
    user: Mapped[User] = relationship()


class SlugAlias(Base):
    """A slug the document had before a rename, so old links and clone URLs keep working."""

    __tablename__ = "slug_aliases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    old_slug: Mapped[str] = mapped_column(String(80), unique=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
