"""Indexes that the main pages' queries need on PostgreSQL (tests/ops/test_query_plans.py).

They are declared here, next to their migration (0102), rather than in the
models' modules so that the tables' owners' code is left as it is; SQLAlchemy
attaches each to its table's metadata all the same.
"""

from __future__ import annotations

from sqlalchemy import Index, func

from app.accounts.models import User
from app.documents.models import Document

INDEXES = (
    # Log-in and token pages look users up case-insensitively.
    Index("ix_users_username_lower", func.lower(User.username)),
    # Document listings: public/anonymous lists by each sort, and admins' unfiltered sorts.
    Index("ix_documents_visibility_updated_at", Document.visibility, Document.updated_at),
    Index("ix_documents_visibility_created_at", Document.visibility, Document.created_at),
    Index("ix_documents_visibility_title_lower", Document.visibility, func.lower(Document.title)),
    Index("ix_documents_created_at", Document.created_at),
    Index("ix_documents_title_lower", func.lower(Document.title)),
)
