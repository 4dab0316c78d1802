"""One search interface over SQLite FTS5 and PostgreSQL full-text search.

Writing: :func:`extract` reads a document's default branch at one commit (Git is the
truth) into a body and an outline; :func:`write_entry` replaces the document's
entry. Nothing here decides *when* to index: :mod:`app.search.worker` does, off
the request path.

Reading: :func:`search` answers only with documents the actor may read. The
visibility rule of :mod:`app.documents.services` (and the filters) sit inside the
one SQL statement that ranks, and the count uses the same condition, so private
documents never reach results, snippets or totals, and cost nothing a reader
could time. Ranking is two keys: whether the title matches, then the text score.
Snippets (the expensive part) are computed for the page only.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app, has_app_context
from markupsafe import Markup, escape
from sqlalchemy.dialects.postgresql import ARRAY, REGCONFIG

import gitstore
from app import db
from app.accounts.models import User
from app.documents import services
from app.documents.models import Document, Membership
from app.search import pairs, snippets
from app.search import query as syntax
from app.search.snippets import START, STOP

log = logging.getLogger(__name__)

#: Files larger than this are not indexed; bodies are cut at MAX_BODY characters
#: (PostgreSQL's tsvector is limited to 1 MB).
MAX_FILE_BYTES = 1_000_000
MAX_BODY = 400_000
MAX_LIMIT = 100
DEFAULT_LANGUAGE = "english"
_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_LANGUAGE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class InvalidCursor(ValueError):
    """A cursor that this server did not hand out."""


class UnknownLanguage(RuntimeError):
    """``SEARCH_LANGUAGE`` names no PostgreSQL text search configuration."""


# --- schema ----------------------------------------------------------------------


def create_entries_table(conn: sa.Connection) -> None:
    """Create the index table if missing (the shape of migrations 0104, 0105, 0402)."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text(
                "CREATE TABLE IF NOT EXISTS search_entries ("
                " document_id integer NOT NULL,"
                " title text NOT NULL, body text NOT NULL,"
                " tsv tsvector NOT NULL, title_tsv tsvector,"
                " CONSTRAINT pk_search_entries PRIMARY KEY (document_id),"
                " CONSTRAINT fk_search_entries_document_id_documents FOREIGN KEY (document_id)"
                " REFERENCES documents (id) ON DELETE CASCADE)"
            )
        )
        conn.execute(
            sa.text(
                "CREATE INDEX IF NOT EXISTS ix_search_entries_tsv ON search_entries USING gin (tsv)"
            )
        )
        conn.execute(sa.text(pairs.KEYS_FUNCTION))
        conn.execute(sa.text(pairs.KEYS_INDEX))
        if conn.scalar(sa.text("SELECT to_regclass('search_pairs')")) is not None:
            # 0401's filters stay until the release after 0402 drops them, because the
            # previous release still reads them: the trigger that drops a filter whose
            # entry was rewritten comes back with the table.
            conn.execute(
                sa.text(
                    "CREATE OR REPLACE TRIGGER search_pairs_stale"
                    " AFTER INSERT OR UPDATE OF tsv ON search_entries"
                    " FOR EACH ROW EXECUTE FUNCTION search_pairs_drop()"
                )
            )
        return
    conn.execute(
        sa.text(
            "CREATE VIRTUAL TABLE IF NOT EXISTS search_entries USING fts5("
            "title, body, prefix = '2 3 4', tokenize = 'porter unicode61')"
        )
    )


def language() -> str:
    """The PostgreSQL text search configuration (``SEARCH_LANGUAGE``)."""
    value = DEFAULT_LANGUAGE
    if has_app_context():
        value = str(current_app.config.get("SEARCH_LANGUAGE") or DEFAULT_LANGUAGE)
    return value


def check_language(conn: sa.Connection, name: str) -> None:
    """Refuse a language PostgreSQL does not know, naming the ones it does."""
    if conn.dialect.name != "postgresql":
        return
    known = list(conn.scalars(sa.text("SELECT cfgname FROM pg_ts_config ORDER BY cfgname")))
    if not _LANGUAGE_NAME.match(name) or name not in known:
        raise UnknownLanguage(
            f"SEARCH_LANGUAGE={name!r} is not a PostgreSQL text search configuration; "
            f"known: {', '.join(known)}"
        )


# --- writing ---------------------------------------------------------------------


@dataclass(frozen=True)
class Extract:
    """What the index holds for one document at one commit."""

    commit: str | None
    body: str
    #: ``[offset, path, heading]`` rows, ordered by offset.
    outline: list[tuple[int, str, str | None]] = field(default_factory=list)


def _clean(text: str) -> str:
    return text.replace(START, "").replace(STOP, "")


def assemble(files: list[tuple[str, str]]) -> tuple[str, list[tuple[int, str, str | None]]]:
    """Join ``(path, text)`` files into one body and its outline (file starts, headings)."""
    parts: list[str] = []
    outline: list[tuple[int, str, str | None]] = []
    offset = 0
    for path, raw in files:
        text = _clean(raw)
        if parts:
            offset += 2  # the separator
        outline.append((offset, path, None))
        if path.endswith((".md", ".markdown")):
            for match in _HEADING.finditer(text):
                outline.append((offset + match.start(), path, match.group(1)))
        parts.append(text)
        offset += len(text)
    body = "\n\n".join(parts)
    if len(body) > MAX_BODY:
        body = body[:MAX_BODY]
        outline = [row for row in outline if row[0] < MAX_BODY]
    return body, outline


def extract(document: Document, repo: gitstore.Document | None = None) -> Extract:
    """The default branch's text files at its current head (binary and huge files skipped)."""
    repo = repo or services.repo(document)
    try:
        commit = repo.head(document.default_branch)
        entries = repo.list_files(commit)
    except gitstore.GitStoreError:
        return Extract(None, "")
    files: list[tuple[str, str]] = []
    for entry in entries:
        if entry.size is None or entry.size > MAX_FILE_BYTES:
            continue
        data = repo.read(entry.path, commit).data
        if b"\x00" in data[:8000]:
            continue
        try:
            files.append((entry.path, data.decode("utf-8")))
        except UnicodeDecodeError:
            continue
    body, outline = assemble(files)
    return Extract(commit, body, outline)


def write_entry(conn: sa.Connection, document_id: int, title: str, body: str | None) -> None:
    """Replace (``body`` given) or retitle (``body`` None) one entry on ``conn``."""
    title = _clean(title)
    if conn.dialect.name == "postgresql":
        lang = language()
        tsv = (
            "setweight(to_tsvector(CAST(:lang AS regconfig), :title), 'A')"
            " || setweight(to_tsvector(CAST(:lang AS regconfig), {body}), 'D')"
        )
        title_tsv = "to_tsvector(CAST(:lang AS regconfig), :title)"
        if body is None:
            conn.execute(
                sa.text(
                    f"UPDATE search_entries SET title = :title, tsv = {tsv.format(body='body')},"
                    f" title_tsv = {title_tsv} WHERE document_id = :id"
                ),
                {"id": document_id, "title": title, "lang": lang},
            )
        else:
            conn.execute(
                sa.text(
                    "INSERT INTO search_entries (document_id, title, body, tsv, title_tsv)"
                    f" VALUES (:id, :title, :body, {tsv.format(body=':body')}, {title_tsv})"
                    " ON CONFLICT (document_id) DO UPDATE SET title = EXCLUDED.title,"
                    " body = EXCLUDED.body, tsv = EXCLUDED.tsv, title_tsv = EXCLUDED.title_tsv"
                ),
                {"id": document_id, "title": title, "body": body, "lang": lang},
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


def delete_entry(conn: sa.Connection, document_id: int) -> None:
    column = "document_id" if conn.dialect.name == "postgresql" else "rowid"
    conn.execute(sa.text(f"DELETE FROM search_entries WHERE {column} = :id"), {"id": document_id})


# --- reading ---------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """Narrowing a search; every filter applies inside the permission rule, never instead."""

    mine: bool = False
    #: Documents where this username is the owner or a member.
    member: str | None = None
    #: Documents whose default branch moved on or after this day (UTC).
    since: date | None = None

    @property
    def active(self) -> bool:
        return self.mine or bool(self.member) or self.since is not None


@dataclass(frozen=True)
class Hit:
    document: Document
    score: float
    snippet: Markup
    title_match: bool = False
    #: The file and the heading the highlighted passage sits under.
    path: str | None = None
    heading: str | None = None


@dataclass(frozen=True)
class Results:
    hits: list[Hit]
    total: int
    next_cursor: str | None
    #: How many of the ``total`` can be paged through (PostgreSQL ranks the best
    #: :data:`RANK_CANDIDATES`); equal to ``total`` when every match is reachable.
    reachable: int | None = None
    #: True when there are more than ``total`` matches (``total`` is then
    #: :data:`TOTAL_CAP`): counting further would cost more than it tells.
    total_is_lower_bound: bool = False


def encode_cursor(title_match: bool, score: float, document_id: int) -> str:
    raw = json.dumps([int(title_match), score, document_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, float, int]:
    """The position after which the next page starts; :class:`InvalidCursor` otherwise."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        title_match, score, document_id = json.loads(raw)
        if title_match not in (0, 1) or not isinstance(document_id, int):
            raise ValueError
        return title_match, float(score), document_id
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise InvalidCursor("the cursor is malformed; start again without one") from exc


def _readable_ids(actor: User | None, filters: Filters) -> sa.Select[Any]:
    """Ids of the documents ``actor`` may read, narrowed by ``filters`` (a subquery).

    Every value that differs between readers or requests is a named parameter
    (``actor_id``, ``me``, ``member``, ``since``), so the statement built around it
    can be kept and run for anyone: :func:`_search_parameters` supplies them.
    """
    stmt = services._visible_to(actor).with_only_columns(Document.id)  # noqa: SLF001
    if filters.mine:
        stmt = stmt.where(Document.owner_id == sa.bindparam("me"))
    if filters.member:
        person = sa.select(User.id).where(User.username == sa.bindparam("member"))
        memberships = sa.select(Membership.document_id).where(
            Membership.user_id == person.scalar_subquery()
        )
        stmt = stmt.where(
            sa.or_(Document.owner_id == person.scalar_subquery(), Document.id.in_(memberships))
        )
    if filters.since is not None:
        stmt = stmt.where(Document.updated_at >= sa.bindparam("since"))
    return stmt


def _reader_parameters(actor: User | None, filters: Filters) -> dict[str, Any]:
    """The values of :func:`_readable_ids`' parameters for this reader and filters."""
    params: dict[str, Any] = {}
    if actor is not None and not actor.is_admin:
        params["actor_id"] = actor.id
    if filters.mine:
        params["me"] = actor.id if actor is not None else -1
    if filters.member:
        params["member"] = filters.member
    if filters.since is not None:
        since = filters.since
        params["since"] = datetime(since.year, since.month, since.day, tzinfo=UTC)
    return params


def _highlight(snippet: str | None) -> Markup:
    text = str(escape(snippet or ""))
    return Markup(text.replace(START, "<mark>").replace(STOP, "</mark>"))


@dataclass(frozen=True)
class _Shape:
    """All that a search statement's SQL depends on.

    Searches of one shape run one statement with different parameters, so it is
    built once per process: building and fingerprinting it anew cost 2-5 ms a
    query. Every value that varies is a named parameter.
    """

    postgres: bool
    #: "anonymous", "admin" or "member": the permission rule takes one of three forms.
    reader: str
    mine: bool
    member: bool
    since: bool
    #: PostgreSQL: a phrase the pair index does not answer alone (checked against
    #: positions). SQLite: a wanted phrase (scored by its words).
    phrase: bool
    negated: bool
    #: PostgreSQL: candidates must have the phrases' word pairs (``pairs``); "only"
    #: when the query is nothing but phrases the pairs answer exactly.
    paired: str | None
    #: Continues after a cursor's position.
    paged: bool


_STATEMENTS: dict[_Shape, tuple[sa.Select[Any], sa.Select[Any]]] = {}
#: A bound that real traffic never reaches (shapes are combinations of a few flags).
_MAX_STATEMENTS = 512


def _statements(
    shape: _Shape, actor: User | None, filters: Filters, clauses: list[syntax.Clause]
) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """The page statement and the count statement of ``shape``, built on first use.

    ``actor``, ``filters`` and ``clauses`` only give the shape its form; their values
    are bound when the statement runs.
    """
    found = _STATEMENTS.get(shape)
    if found is not None:
        return found
    readable = _readable_ids(actor, filters)
    if shape.postgres:
        ranked, count = _postgres(clauses, readable, shape.phrase, shape.paired)
    else:
        ranked, count = _sqlite(clauses, readable, shape.phrase)
    stmt = sa.select(ranked.c.id, ranked.c.th, ranked.c.score, ranked.c.total)
    if shape.paged:
        th, score, last = (
            sa.bindparam("after_th"),
            sa.bindparam("after_score", type_=sa.Float),
            sa.bindparam("after_id"),
        )
        stmt = stmt.where(
            sa.or_(
                ranked.c.th < th,
                sa.and_(ranked.c.th == th, ranked.c.score < score),
                sa.and_(ranked.c.th == th, ranked.c.score == score, ranked.c.id > last),
            )
        )
    stmt = stmt.order_by(ranked.c.th.desc(), ranked.c.score.desc(), ranked.c.id).limit(
        sa.bindparam("limit", type_=sa.Integer)
    )
    if len(_STATEMENTS) >= _MAX_STATEMENTS:
        _STATEMENTS.clear()
    _STATEMENTS[shape] = (stmt, count)
    return stmt, count


def search(
    actor: User | None,
    q: str,
    limit: int = 20,
    cursor: str | None = None,
    filters: Filters | None = None,
) -> Results:
    """Documents ``actor`` may read matching ``q``, title matches first, then by score.

    ``cursor`` (from a previous page's ``next_cursor``) continues after that page's
    last hit: keyset pagination on (title match, score, id), so pages neither skip
    nor repeat while the ranking is stable. The total comes from the same statement;
    it is exact up to :data:`TOTAL_CAP` and a lower bound above.
    """
    limit = max(1, min(limit, MAX_LIMIT))
    after = decode_cursor(cursor) if cursor else None
    filters = filters or Filters()
    session = db.session()
    clauses = syntax.parse(q)
    postgres = session.get_bind().dialect.name == "postgresql"
    found = _postgres_parameters(session, clauses) if postgres else _sqlite_parameters(clauses)
    if found is None:
        return Results([], 0, None)
    phrase, params = found
    reader = "anonymous" if actor is None else "admin" if actor.is_admin else "member"
    shape = _Shape(
        postgres=postgres,
        reader=reader,
        mine=filters.mine,
        member=bool(filters.member),
        since=filters.since is not None,
        phrase=phrase,
        negated=any(c.negated for c in clauses),
        paired=params.pop("paired", None),
        paged=after is not None,
    )
    stmt, count = _statements(shape, actor, filters, clauses)
    params |= _reader_parameters(actor, filters) | {"limit": limit + 1}
    if after is not None:
        params |= dict(zip(("after_th", "after_score", "after_id"), after, strict=True))
    # Core execution: the statement selects plain rows, and the ORM's own compile
    # step cost a millisecond a query.
    conn = session.connection()
    if postgres:
        # A word in most documents makes a sequential scan look cheaper than the GIN
        # index, but the scan decompresses every document's tsvector to test it (10x
        # slower at 10,000 documents). The index answers without reading them.
        # The driver prepares a statement run often; PostgreSQL may then plan it once
        # for any query text, blind to how many documents a word is in (measured:
        # 25 ms became 180 ms for a frequent word). Each query gets its own plan.
        # Both for this transaction only, set in one round trip.
        conn.execute(_PLANNER_SETTINGS, {"seqscan": "off", "plans": "force_custom_plan"})
    try:
        rows = conn.execute(stmt, params).all()
        counted = int(rows[0].total) if rows else int(conn.scalar(count, params) or 0)
    finally:
        if postgres:
            conn.execute(_PLANNER_SETTINGS, {"seqscan": "on", "plans": "auto"})
    more = len(rows) > limit
    rows = rows[:limit]
    page = _page(session, snippets.patterns(clauses), [r.id for r in rows], postgres)
    hits = [
        Hit(page[r.id][0], float(r.score), _highlight(page[r.id][1]), bool(r.th), *page[r.id][2:])
        for r in rows
        if r.id in page
    ]
    last_row = rows[-1] if rows else None
    next_cursor = (
        encode_cursor(bool(last_row.th), float(last_row.score), last_row.id)
        if more and last_row is not None
        else None
    )
    total = min(counted, TOTAL_CAP)
    reachable = min(total, RANK_CANDIDATES) if postgres else total
    return Results(hits, total, next_cursor, reachable, counted > TOTAL_CAP)


_PLANNER_SETTINGS = sa.text(
    "SELECT set_config('enable_seqscan', :seqscan, true),"
    " set_config('plan_cache_mode', :plans, true)"
)


#: Characters of each body read for its snippet at first: the first hit of a query
#: usually sits near the start, and reading and sending whole bodies was a third
#: of a page's cost. A body whose snippet does not lie inside its start is read
#: again whole.
SNIPPET_PREFIX = 3_000


def _page(
    session: Any, compiled: list[re.Pattern[str]], ids: list[int], postgres: bool
) -> dict[int, tuple[Document, str, str | None, str | None]]:
    """The page's documents, each with its snippet and the file and heading it sits
    under: one query for the page (two when a hit lies deep in a body)."""
    if not ids:
        return {}
    from app.search.models import SearchState

    key = _entries.c.document_id if postgres else _entries.c.rowid
    rows = session.execute(
        sa.select(
            Document, sa.func.substr(_entries.c.body, 1, SNIPPET_PREFIX + 1), SearchState.outline
        )
        .outerjoin(_entries, key == Document.id)
        .outerjoin(SearchState, SearchState.document_id == Document.id)
        .where(Document.id.in_(ids))
    ).all()
    found: dict[int, snippets.Snippet | None] = {
        document.id: snippets.cut(start or "", compiled, whole=len(start or "") <= SNIPPET_PREFIX)
        for document, start, _ in rows
    }
    deeper = [doc_id for doc_id, snippet in found.items() if snippet is None]
    if deeper:
        bodies = session.execute(sa.select(key, _entries.c.body).where(key.in_(deeper)))
        found |= {doc_id: snippets.cut(body or "", compiled) for doc_id, body in bodies}
    page: dict[int, tuple[Document, str, str | None, str | None]] = {}
    for document, _, outline in rows:
        snippet = found.get(document.id) or snippets.Snippet("", None)
        path, heading = snippets.where(snippet.offset, json.loads(outline or "[]"))
        page[document.id] = (document, snippet.text, path, heading)
    return page


_entries = sa.table(
    "search_entries",
    sa.column("document_id"),
    sa.column("rowid"),
    sa.column("title"),
    sa.column("body"),
    sa.column("tsv"),
    sa.column("title_tsv"),
)

#: PostgreSQL ranks (``ts_rank``, which reads each document's whole tsvector) only
#: this many candidates, chosen cheaply: title matches first, then the most
#: recently updated.
RANK_CANDIDATES = 300

#: Totals are exact up to this many matches; above it a search says "at least
#: TOTAL_CAP" (:attr:`Results.total_is_lower_bound`), as web search engines do. On
#: PostgreSQL a phrase then stops checking candidates once it has this many.
TOTAL_CAP = 1_000


def _loose(clauses: list[syntax.Clause]) -> list[syntax.Clause]:
    """The clauses with every phrase loosened to its words, excluded phrases dropped.

    PostgreSQL's GIN index answers words, prefixes and exclusions exactly, but a
    phrase (wanted or excluded) only approximately: it must then read each candidate's whole tsvector
    for word positions. The loosened query finds the candidates without reading
    any; only they are checked for the phrase.
    """
    loose: list[syntax.Clause] = []
    for c in clauses:
        if len(c.words) == 1:
            loose.append(c)
            continue
        if c.negated:  # dropped: without it more documents match, never fewer
            continue
        loose += [
            syntax.Clause((w,), c.prefix and i == len(c.words) - 1) for i, w in enumerate(c.words)
        ]
    return loose


def _phrase_keys(session: Any, clauses: list[syntax.Clause]) -> tuple[list[int], bool]:
    """The word-pair keys every match must have, and whether they answer every phrase
    of the query exactly (:mod:`app.search.pairs`).

    The phrases' lexemes come from PostgreSQL (the parser and stemmer the index
    used). A trailing prefix word is left out, its lexeme being unknown; such a
    phrase, and an excluded one, is always checked against positions.
    """
    texts = [
        " ".join(c.words[:-1] if c.prefix else c.words)
        for c in clauses
        if len(c.words) > 1 and not c.negated
    ]
    exact = all(not c.negated and not c.prefix for c in clauses if len(c.words) > 1)
    if not texts:
        return [], False
    keys: list[int] = []
    rows = session.execute(sa.text(pairs.PHRASE_KEYS), {"texts": texts, "lang": language()})
    for _, found, whole in rows:
        keys += [k for k in found if k not in keys]
        exact = exact and bool(whole)
    return keys, exact


def _postgres_parameters(
    session: Any, clauses: list[syntax.Clause]
) -> tuple[bool, dict[str, Any]] | None:
    """Whether the query has a phrase, and the values :func:`_postgres` binds; None
    when nothing is asked for."""
    text = syntax.to_tsquery(clauses)
    if text is None:
        return None
    loose = syntax.to_tsquery(_loose(clauses))
    keys, exact = _phrase_keys(session, clauses) if loose != text else ([], True)
    phrase = loose != text and not exact
    params: dict[str, Any] = {
        "q": text,
        "loose": loose,
        "rank": syntax.to_rank_tsquery(clauses),
        "lang": language(),
        "cap": TOTAL_CAP + 1,
        "ranked": RANK_CANDIDATES,
    }
    if keys:
        params["pairs"] = keys
        only = exact and all(len(c.words) > 1 and not c.negated for c in clauses)
        params["paired"] = "only" if only else "also"  # the shape's, not bound
    return phrase, params


def _postgres(
    clauses: list[syntax.Clause], readable: sa.Select[Any], phrase: bool, paired: str | None
) -> tuple[Any, sa.Select[Any]]:
    """Rank at most :data:`RANK_CANDIDATES` and check at most :data:`TOTAL_CAP` + 1 phrases.

    ``pool``: readable documents the GIN index says match (without reading any
    tsvector), each phrase loosened to its words and narrowed to the documents
    holding its word pairs (:mod:`app.search.pairs`): exact, unless a phrase is
    longer than two words, has a stop word inside, ends in a prefix or is excluded.
    ``matched``: for such a phrase,
    pool members checked one by one against their positions, stopping after
    TOTAL_CAP + 1 (a LATERAL with LIMIT, so PostgreSQL cannot turn it into a scan
    that checks every row); otherwise the pool. Title matches are looked for in the
    whole pool (the small ``title_tsv`` first), so they lead even when ``matched``
    stopped early. The permission rule is inside ``pool``, and every later step
    only narrows it.
    """
    e = _entries
    lang = sa.cast(sa.bindparam("lang"), REGCONFIG)
    tsq = sa.func.to_tsquery(lang, sa.bindparam("q"))
    loose = sa.func.to_tsquery(lang, sa.bindparam("loose"))
    # The pool carries the two cheap ranking keys (the title test reads the small
    # title_tsv of a row the index scan fetched anyway; the recency comes with the
    # permission rule's own rows), so choosing candidates needs no further join.
    th = sa.cast(sa.func.coalesce(e.c.title_tsv.op("@@")(tsq), sa.false()), sa.Integer)
    allowed = readable.add_columns(Document.updated_at).subquery("allowed")
    # The GIN index alone, in a CTE of its own: joined directly, a prefix or a
    # frequent word could make a merge join on the primary key look cheaper, which
    # reads every tsvector to test it (measured: 300 ms against 25).
    # The phrases' word pairs come from the pair index alone, always in a CTE of their
    # own: the index expression must never be computed for a row (it reads the
    # tsvector and pairs its words: milliseconds a document).
    wanted_pairs = sa.cast(sa.bindparam("pairs"), ARRAY(sa.BigInteger))

    def has_pairs(entries: Any) -> Any:
        return sa.func.search_pair_keys(entries.c.tsv).op("@>")(wanted_pairs)

    hits = (
        sa.select(e.c.document_id.label("id"), th.label("th"))
        # Nothing but exact phrases: their pairs say everything the words would.
        .where(has_pairs(e) if paired == "only" else e.c.tsv.op("@@")(loose))
        .cte("hits")
        .prefix_with("MATERIALIZED")
    )
    pool_query = sa.select(hits.c.id, hits.c.th, allowed.c.updated_at).select_from(
        hits.join(allowed, allowed.c.id == hits.c.id)
    )
    if paired == "also":
        p = _entries.alias("paired_entries")
        paired_ids = (
            sa.select(p.c.document_id.label("id"))
            .where(has_pairs(p))
            .cte("paired")
            .prefix_with("MATERIALIZED")
        )
        pool_query = pool_query.where(hits.c.id.in_(sa.select(paired_ids.c.id)))
    pool = pool_query.cte("pool").prefix_with("MATERIALIZED")
    if phrase:
        # Most recent first, so that when the check stops early the candidates are
        # the ones a complete check would have chosen (title matches, then recency).
        recent = (
            sa.select(pool).order_by(pool.c.updated_at.desc(), pool.c.id).subquery("recent_first")
        )
        entry = _entries.alias("phrase_entries")
        # A scalar subquery, evaluated per candidate: PostgreSQL turns an EXISTS into
        # one hashed pass over every document holding the words (200 ms).
        holds = sa.func.coalesce(
            sa.select(entry.c.tsv.op("@@")(tsq))
            .where(entry.c.document_id == recent.c.id)
            .correlate_except(entry)
            .scalar_subquery(),
            sa.false(),
        )
        check = sa.select(sa.literal(1).label("hit")).where(holds).lateral("phrase_check")
        matched = (
            sa.select(recent.c.id, recent.c.th, recent.c.updated_at)
            .select_from(recent.join(check, sa.true()))
            .order_by(recent.c.updated_at.desc(), recent.c.id)
            .limit(sa.bindparam("cap"))
            .cte("matched")
            .prefix_with("MATERIALIZED")
        )
        # Title matches beyond the checked ones. A title with the phrase (and every
        # other positive term) matches the whole entry too, unless an excluded word
        # may sit in the body: only then is the large tsv read.
        titled = sa.select(pool.c.id, pool.c.th, pool.c.updated_at).where(pool.c.th == 1)
        if any(c.negated for c in clauses):
            t = _entries.alias("titled_entries")
            recheck = (
                sa.select(sa.literal(1).label("hit"))
                .where(t.c.document_id == pool.c.id, t.c.tsv.op("@@")(tsq))
                .limit(1)
                .lateral("title_check")
            )
            titled = titled.select_from(pool.join(recheck, sa.true()))
        either = sa.union(
            sa.select(matched.c.id, matched.c.th, matched.c.updated_at),
            titled.limit(sa.bindparam("ranked", type_=sa.Integer)),
        ).subquery("either")
    else:
        matched = either = pool
    total = sa.select(sa.func.count()).select_from(matched).scalar_subquery()
    candidates = (
        sa.select(either.c.id, either.c.th, total.label("total"))
        .order_by(either.c.th.desc(), either.c.updated_at.desc(), either.c.id)
        .limit(sa.bindparam("ranked", type_=sa.Integer))
        .subquery()
    )
    inner = _entries.alias("ranked_entries")
    ranking = sa.func.to_tsquery(lang, sa.bindparam("rank"))
    score = sa.cast(sa.func.ts_rank(inner.c.tsv, ranking), sa.Float)
    ranked = (
        sa.select(candidates.c.id, candidates.c.th, score.label("score"), candidates.c.total)
        .select_from(candidates.join(inner, inner.c.document_id == candidates.c.id))
        .subquery()
    )
    count = sa.select(sa.func.count()).select_from(matched)
    return ranked, count


def _sqlite_parameters(clauses: list[syntax.Clause]) -> tuple[bool, dict[str, Any]] | None:
    """Whether the query wants a phrase, and the values :func:`_sqlite` binds; None
    when nothing is asked for."""
    text = syntax.to_fts5(clauses)
    if text is None:
        return None
    phrase = any(len(c.words) > 1 and not c.negated for c in clauses)
    params = {
        "q": text,
        "tq": syntax.to_fts5(clauses, column="title"),
        "cap": TOTAL_CAP + 1,
        "titles": RANK_CANDIDATES,
    }
    if phrase:
        params["words"] = syntax.to_fts5(_loose([c for c in clauses if not c.negated]))
    return phrase, params


def _sqlite(
    clauses: list[syntax.Clause], readable: sa.Select[Any], phrase: bool
) -> tuple[Any, sa.Select[Any]]:
    """Rank the newest :data:`TOTAL_CAP` + 1 readable matches and the newest title matches.

    FTS5 finds matches lazily, in rowid (creation) order, computing ``bm25`` as it
    goes: asking for the newest TOTAL_CAP + 1 stops there, where ranking every match
    of a frequent word or phrase decoded all of their positions (measured at 10,000
    documents: 45 ms for a frequent word, 170 ms for a phrase of two). Title matches
    lead whatever their age (the newest :data:`RANK_CANDIDATES` of them); every match
    of the title query matches the whole query, so totals count the newest set alone.
    """
    e = _entries
    table = sa.literal_column("search_entries")
    # The unary plus keeps SQLite from handing the id list to FTS5 as a rowid constraint:
    # FTS5 would then run the MATCH once per readable id (seconds at 10,000 documents)
    # instead of once, filtering its result.
    unindexed_rowid = sa.literal_column("+search_entries.rowid")
    score = -sa.func.bm25(table, 10.0, 1.0)
    # Computed once for both queries below (the permission rule reads every document).
    allowed = readable.cte("allowed").prefix_with("MATERIALIZED")
    allowed_ids = sa.select(allowed.c.id)

    def newest_matches(q: str, limit: str, scored: bool) -> Any:
        columns = [e.c.rowid.label("id")] + ([score.label("score")] if scored else [])
        return (
            sa.select(*columns)
            .where(table.op("MATCH")(sa.bindparam(q)), unindexed_rowid.in_(allowed_ids))
            .order_by(e.c.rowid.desc())
            .limit(sa.bindparam(limit))
            .cte(q)
            .prefix_with("MATERIALIZED")
        )

    # bm25 first counts the rows holding each phrase (its document frequency), a full
    # pass over them: for a phrase of common words that was most of a query (50 ms
    # against 6 to find the newest matches). So a query with a phrase scores its
    # newest matches with its words instead (each word's count is cheap), and the
    # title query is not scored at all: a title match keeps its whole-query score.
    newest = newest_matches("q", "cap", scored=not phrase)
    scored: Any = newest
    if phrase:
        scored = (
            sa.select(e.c.rowid.label("id"), score.label("score"))
            .where(
                table.op("MATCH")(sa.bindparam("words")),
                unindexed_rowid.in_(sa.select(newest.c.id)),
            )
            .cte("scored")
            .prefix_with("MATERIALIZED")
        )
    titled = newest_matches("tq", "titles", scored=False)
    title_ids = sa.select(titled.c.id)
    th = sa.cast(scored.c.id.in_(title_ids), sa.Integer)
    either = sa.union_all(
        sa.select(scored.c.id, th.label("th"), scored.c.score),
        # Title matches older than the newest TOTAL_CAP + 1: last among titles.
        sa.select(titled.c.id, sa.literal(1), sa.literal(0.0)).where(
            titled.c.id.not_in(sa.select(newest.c.id))
        ),
    ).subquery("either")
    total = sa.select(sa.func.count()).select_from(newest).scalar_subquery()
    ranked = sa.select(either.c.id, either.c.th, either.c.score, total.label("total")).subquery()
    count = sa.select(sa.func.count()).select_from(newest)
    return ranked, count
