"""The search index table.

On PostgreSQL ``search_entries`` is a plain table (``tsv``: the title weighted A,
the body D, with a GIN index). On SQLite it is an FTS5 virtual table whose rowid is
the document id (columns ``title``, ``body``). The model describes the PostgreSQL
shape; it is registered so tests empty the table with the others.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, Text
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class SearchEntry(Base):
    __tablename__ = "search_entries"

    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True
    )
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    tsv: Mapped[str] = mapped_column(TSVECTOR)
