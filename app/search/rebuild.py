"""Rebuilding the whole index from Git (the truth), e.g. after the table was lost."""

from __future__ import annotations

import sqlalchemy as sa

from app import db
from app.documents.models import Document
from app.search.index import check_language, create_entries_table, language


def reindex_all() -> int:
    """Drop and re-create ``search_entries``, then index every document; returns the count.

    Dropping (rather than deleting rows) also repairs a table that was damaged or
    removed by hand. Runs in the caller's thread; the background indexer keeps
    serving saves meanwhile, and whatever it writes is overwritten here or is newer.
    """
    from app.search import get_indexer

    session = db.session()
    conn = session.connection()
    check_language(conn, language())
    conn.execute(sa.text("DROP TABLE IF EXISTS search_entries"))
    create_entries_table(conn)
    conn.execute(sa.text("UPDATE search_state SET indexed_commit = NULL"))
    session.commit()
    indexer = get_indexer()
    ids = list(session.scalars(sa.select(Document.id).order_by(Document.id)))
    for document_id in ids:
        indexer.index_one(document_id)
    db.get_db().remove()
    return len(ids)
