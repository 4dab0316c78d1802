"""The search tables.

``search_entries`` is the index itself. On PostgreSQL it is a plain table
(``tsv``: the title weighted A and the body D, with a GIN index; ``title_tsv``: the
title alone, so "the title matches" is a cheap test for ranking; an expression
index of its word pairs answers phrases, :mod:`app.search.pairs`). On SQLite it is an
FTS5 virtual table whose rowid is the document id (columns ``title``, ``body``). The
model describes the PostgreSQL shape; it is registered so tests empty the table.

``search_state`` says, per document, which commit its entry was built from and
whether it waits for the indexer (``queued_at``). ``queue_seq`` grows with every
request to index, so the worker only clears a queue mark it has fully served: a
save that lands while the document is being indexed queues it again. ``outline``
maps body offsets to the file and heading they come from (JSON), so results can
say where a hit sits without one index row per section.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime


class SearchEntry(Base):
    __tablename__ = "search_entries"

    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True
    )
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    tsv: Mapped[str] = mapped_column(TSVECTOR)
    title_tsv: Mapped[str | None] = mapped_column(TSVECTOR, nullable=True)


class SearchState(Base):
    __tablename__ = "search_state"

    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True
    )
    indexed_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    indexed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    queue_seq: Mapped[int] = mapped_column(Integer, default=0)
    outline: Mapped[str | None] = mapped_column(Text, nullable=True)
