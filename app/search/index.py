"""One search interface over SQLite FTS5 and PostgreSQL full-text search.

``index_document`` reads the default branch's text files from the repository (Git
is the truth) and replaces the document's entry; ``remove_document`` drops it;
``search`` answers only with documents the actor may read: the visibility rule of
:mod:`app.documents.services` is applied inside the query, so private documents
never reach results, snippets or counts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlalchemy as sa
from markupsafe import Markup, escape

import gitstore
from app import db
from app.accounts.models import User
from app.documents import services
from app.documents.models import Document
from app.search import query as syntax

log = logging.getLogger(__name__)

#: Files larger than this are not indexed; bodies are cut at MAX_BODY characters
#: (PostgreSQL's tsvector is limited to 1 MB).
MAX_FILE_BYTES = 1_000_000
MAX_BODY = 400_000
MAX_LIMIT = 100
LANGUAGE = "english"
#: Private-use characters mark hits in snippets; they are stripped from indexed text,
#: so after escaping they are the only thing turned into markup.
START, STOP = "\ue000", "\ue001"

_fts = sa.table("search_entries", sa.column("rowid"), sa.column("title"), sa.column("body"))
_pg = sa.table(
    "search_entries",
    sa.column("document_id"),
    sa.column("title"),
    sa.column("body"),
    sa.column("tsv"),
)


@dataclass(frozen=True)
class Hit:
    document: Document
    score: float
    snippet: Markup


@dataclass(frozen=True)
class Results:
    hits: list[Hit]
    total: int
    next_cursor: str | None


def _clean(text: str) -> str:
    return text.replace(START, "").replace(STOP, "")


def document_text(document: Document) -> str:
    """The default branch's text files, concatenated (binary and huge files skipped)."""
    repo = services.repo(document)
    try:
        entries = repo.list_files(document.default_branch)
    except gitstore.GitStoreError:
        return ""
    parts: list[str] = []
    for entry in entries:
        if entry.size is None or entry.size > MAX_FILE_BYTES:
            continue
        data = repo.read(entry.path, document.default_branch).data
        if b"\x00" in data[:8000]:
            continue
        try:
            parts.append(data.decode("utf-8"))
        except UnicodeDecodeError:
            continue
    return _clean("\n\n".join(parts))[:MAX_BODY]


def _write(conn: sa.Connection, document_id: int, title: str, body: str | None) -> None:
    """Replace (``body`` given) or retitle (``body`` None) one entry on ``conn``."""
    title = _clean(title)
    if conn.dialect.name == "postgresql":
        tsv = "setweight(to_tsvector(:lang, :title), 'A') || setweight(to_tsvector(:lang, :body), 'D')"
        if body is None:
            conn.execute(
                sa.text(
                    "UPDATE search_entries SET title = :title,"
                    f" tsv = {tsv.replace(':body', 'body')} WHERE document_id = :id"
                ),
                {"id": document_id, "title": title, "lang": LANGUAGE},
            )
            return
        conn.execute(
            sa.text(
                "INSERT INTO search_entries (document_id, title, body, tsv)"
                f" VALUES (:id, :title, :body, {tsv}) ON CONFLICT (document_id) DO UPDATE"
                " SET title = EXCLUDED.title, body = EXCLUDED.body, tsv = EXCLUDED.tsv"
            ),
            {"id": document_id, "title": title, "body": body, "lang": LANGUAGE},
        )
        return
    if body is None:
        conn.execute(
            sa.text("UPDATE search_entries SET title = :title WHERE rowid = :id"),
            {"id": document_id, "title": title},
        )
        return
    conn.execute(sa.text("DELETE FROM search_entries WHERE rowid = :id"), {"id": document_id})
    conn.execute(
        sa.text("INSERT INTO search_entries (rowid, title, body) VALUES (:id, :title, :body)"),
        {"id": document_id, "title": title, "body": body},
    )


def _delete(conn: sa.Connection, document_id: int) -> None:
    column = "document_id" if conn.dialect.name == "postgresql" else "rowid"
    conn.execute(sa.text(f"DELETE FROM search_entries WHERE {column} = :id"), {"id": document_id})


def index_document(document: Document) -> None:
    """Re-read the document's default branch and replace its entry (commits)."""
    body = document_text(document)
    session = db.session()
    _write(session.connection(), document.id, document.title, body)
    session.commit()


def remove_document(document_id: int) -> None:
    session = db.session()
    _delete(session.connection(), document_id)
    session.commit()


def reindex_all() -> int:
    """Empty the index and rebuild it from every repository; returns the count."""
    session = db.session()
    session.execute(sa.text("DELETE FROM search_entries"))
    session.commit()
    count = 0
    for document in session.scalars(sa.select(Document).order_by(Document.id)).all():
        index_document(document)
        count += 1
    return count


def _highlight(snippet: str | None) -> Markup:
    text = str(escape(snippet or ""))
    return Markup(text.replace(START, "<mark>").replace(STOP, "</mark>"))


def _offset(cursor: str | None) -> int:
    try:
        return max(0, int(cursor or 0))
    except ValueError:
        return 0


def search(actor: User | None, q: str, limit: int = 20, cursor: str | None = None) -> Results:
    """Documents ``actor`` may read matching ``q``, best first; ``cursor`` pages on."""
    limit = max(1, min(limit, MAX_LIMIT))
    offset = _offset(cursor)
    session = db.session()
    clauses = syntax.parse(q)
    visible = services._visible_to(actor).with_only_columns(Document.id)  # noqa: SLF001
    if session.get_bind().dialect.name == "postgresql":
        text = syntax.to_tsquery(clauses)
        if text is None:
            return Results([], 0, None)
        lang = sa.literal_column(f"'{LANGUAGE}'::regconfig")
        tsq = sa.func.to_tsquery(lang, sa.bindparam("q", text))
        doc_id = _pg.c.document_id
        where = sa.and_(_pg.c.tsv.op("@@")(tsq), doc_id.in_(visible))
        score = sa.func.ts_rank(_pg.c.tsv, tsq)
        options = f'StartSel="{START}", StopSel="{STOP}", MaxWords=30, MinWords=10'
        snippet = sa.func.ts_headline(lang, _pg.c.body, tsq, options)
        ranked = sa.select(doc_id, score.label("score")).where(where)
        ranked = ranked.order_by(score.desc(), doc_id).limit(limit + 1).offset(offset).subquery()
        page = sa.select(ranked.c.document_id, ranked.c.score, snippet).join(
            _pg, _pg.c.document_id == ranked.c.document_id
        )
        page = page.order_by(ranked.c.score.desc(), ranked.c.document_id)
        count = sa.select(sa.func.count()).select_from(_pg).where(where)
    else:
        text = syntax.to_fts5(clauses)
        if text is None:
            return Results([], 0, None)
        table = sa.literal_column("search_entries")
        where = sa.and_(table.op("MATCH")(sa.bindparam("q", text)), _fts.c.rowid.in_(visible))
        score = sa.func.bm25(table, 10.0, 1.0)
        snippet = sa.func.snippet(table, 1, START, STOP, "…", 24)
        page = sa.select(_fts.c.rowid, score, snippet).where(where)
        page = page.order_by(score, _fts.c.rowid).limit(limit + 1).offset(offset)
        count = sa.select(sa.func.count()).select_from(_fts).where(where)
    rows = session.execute(page).all()
    total = session.scalar(count) or 0
    more = len(rows) > limit
    rows = rows[:limit]
    documents = {
        d.id: d
        for d in session.scalars(sa.select(Document).where(Document.id.in_([r[0] for r in rows])))
    }
    hits = [
        Hit(documents[r[0]], abs(float(r[1])), _highlight(r[2])) for r in rows if r[0] in documents
    ]
    return Results(hits, total, str(offset + limit) if more else None)
