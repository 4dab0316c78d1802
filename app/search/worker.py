"""Keeping the index current, off the request path.

A save, push, live commit, merge or restore only *queues* its document
(:func:`enqueue`: one small upsert on ``search_state``, on its own connection, never
failing the caller). One background :class:`Indexer` per process drains the queue:
it reads the default branch from Git and replaces the entry. A thread, which is a
greenlet once gevent has patched the process, with its own app context and session.

The queue is not trusted to be complete. At start and every
``SEARCH_CATCHUP_SECONDS`` the indexer compares each document's indexed commit with
its default branch head and queues the ones behind, so a crash, a restore from a
backup, a signal sent in another process, or a change made straight in a
repository all heal on their own.

Several processes may drain the same queue: indexing is idempotent, and a queue
mark is cleared only if no newer request arrived meanwhile (``queue_seq``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import Engine

import gitstore
from app.db import UTCDateTime, utcnow

log = logging.getLogger(__name__)

_BATCH = 50
#: After failed rounds the indexer waits longer, up to this (a database outage must
#: not become a log flood or a busy loop).
MAX_BACKOFF_SECONDS = 60.0
#: Every indexer of this process, so that :func:`stop_all` can stop them.
_INDEXERS: weakref.WeakSet[Indexer] = weakref.WeakSet()


def stop_all() -> None:
    """Stop every indexer in this process (the end of a test; a process shutting down)."""
    for indexer in list(_INDEXERS):
        indexer.stop(timeout=1.0)


_ENQUEUE = sa.text(
    "INSERT INTO search_state (document_id, queued_at, queue_seq) VALUES (:id, :now, 1)"
    " ON CONFLICT (document_id) DO UPDATE SET"
    " queued_at = COALESCE(search_state.queued_at, excluded.queued_at),"
    " queue_seq = search_state.queue_seq + 1"
).bindparams(sa.bindparam("now", type_=UTCDateTime()))


def enqueue_on(conn: sa.Connection, document_id: int) -> None:
    """Ask for ``document_id`` to be (re)indexed, within ``conn``'s transaction."""
    conn.execute(_ENQUEUE, {"id": document_id, "now": utcnow()})


class Indexer:
    """The queue's consumer for one application in one process."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.engine: Engine = app.extensions["quire.db"].engine
        self.poll_seconds = float(app.config.get("SEARCH_POLL_SECONDS", 2.0))
        self.catchup_seconds = float(
            app.config.get("SEARCH_CATCHUP_SECONDS")
            or os.environ.get("SEARCH_CATCHUP_SECONDS")
            or 300
        )
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None
        #: Serialises draining between the worker and :meth:`flush` callers.
        self._drain_lock = threading.Lock()
        sa.event.listen(self.engine, "engine_disposed", self._on_engine_disposed)
        _INDEXERS.add(self)

    # ------------------------------------------------------------------ queueing

    def enqueue(self, document_id: int) -> None:
        """Queue a document and wake the worker; never raises (a save must not fail)."""
        try:
            with self.engine.begin() as conn:
                enqueue_on(conn, document_id)
        except Exception:  # noqa: BLE001 - the catch-up finds it later
            log.warning("search: could not queue document %s", document_id, exc_info=True)
        self.start()
        self._wake.set()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the background worker once (idempotent, cheap to call per request)."""
        if self._thread is not None or self._stopping.is_set():
            return
        with self._guard:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="search-indexer", daemon=True
                )
                self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _on_engine_disposed(self, engine: Engine) -> None:
        # The app is closing its database (shutdown, end of a test): stop with it, so
        # no worker outlives its app and writes into another one's tables.
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        from app.search.index import UnknownLanguage, check_language

        try:
            with self.engine.connect() as conn:
                check_language(conn, str(self.app.config.get("SEARCH_LANGUAGE") or "english"))
        except UnknownLanguage:
            log.exception("search: the indexer does not start")
            return
        except Exception:  # noqa: BLE001 - the database may be starting; indexing retries
            log.warning("search: could not check SEARCH_LANGUAGE", exc_info=True)
        next_catchup = 0.0
        failures = 0
        while not self._stopping.is_set():
            try:
                if time.monotonic() >= next_catchup:
                    self.catch_up()
                    next_catchup = time.monotonic() + self.catchup_seconds
                self.drain()
            except Exception:  # noqa: BLE001 - keep serving; the next round retries
                failures += 1
                if failures == 1:
                    log.exception("search: indexing round failed; retrying with backoff")
                elif failures % 10 == 0:
                    log.warning("search: indexing still failing (%d rounds)", failures)
            else:
                if failures:
                    log.info("search: indexing recovered after %d failed rounds", failures)
                failures = 0
            wait = min(self.poll_seconds * 2 ** min(failures, 10), MAX_BACKOFF_SECONDS)
            self._wake.wait(wait if failures else self.poll_seconds)
            self._wake.clear()

    # ------------------------------------------------------------------ work

    def flush(self) -> int:
        """Index everything queued now, in the caller's thread (tests, the CLI)."""
        return self.drain()

    def drain(self) -> int:
        """Index queued documents until the queue is empty; returns how many."""
        done = 0
        with self._drain_lock, self.app.app_context():
            from app import db

            try:
                while not (self._stopping.is_set() and self._in_worker()):
                    batch = self._queued()
                    if not batch:
                        break
                    for document_id, seq in batch:
                        self._index_or_park(document_id, seq)
                        done += 1
                        time.sleep(0)  # under gevent: let requests run between documents
            finally:
                db.get_db().remove()
        return done

    def _in_worker(self) -> bool:
        return threading.current_thread() is self._thread

    def _queued(self) -> list[tuple[int, int]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT document_id, queue_seq FROM search_state"
                    " WHERE queued_at IS NOT NULL ORDER BY queued_at, document_id LIMIT :n"
                ),
                {"n": _BATCH},
            )
            return [(int(r[0]), int(r[1])) for r in rows]

    def _index_or_park(self, document_id: int, seq: int) -> None:
        """Index one queued document; on failure, take it off the queue and say so.

        A failing document must not block the queue or be retried every few seconds;
        it stays behind its branch head, so the next catch-up queues it again.
        """
        from app import db

        try:
            self.index_one(document_id, seq)
        except Exception:  # noqa: BLE001 - logged; the catch-up retries
            db.session().rollback()
            log.exception("search: indexing document %s failed", document_id)
            with self.engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "UPDATE search_state SET queued_at = NULL"
                        " WHERE document_id = :id AND queue_seq = :seq"
                    ),
                    {"id": document_id, "seq": seq},
                )

    def index_one(self, document_id: int, seq: int | None = None) -> None:
        """Rebuild one entry from Git and mark it done (unless queued again meanwhile)."""
        import json

        from app import db
        from app.documents.models import Document
        from app.search.index import delete_entry, extract, write_entry

        session = db.session()
        document = session.get(Document, document_id)
        if document is None:  # deleted: its rows go with it
            conn = session.connection()
            delete_entry(conn, document_id)
            conn.execute(
                sa.text("DELETE FROM search_state WHERE document_id = :id"), {"id": document_id}
            )
            session.commit()
            return
        try:
            found = extract(document)
        except gitstore.GitStoreError:
            log.warning("search: cannot read %s; left for the catch-up", document.slug)
            found = None
        conn = session.connection()
        if found is not None:
            write_entry(conn, document.id, document.title, found.body)
        done = (
            "queued_at = NULL"
            if seq is None
            else ("queued_at = CASE WHEN queue_seq = :seq THEN NULL ELSE queued_at END")
        )
        values: dict[str, Any] = {"id": document.id, "seq": seq, "now": utcnow()}
        if found is not None:
            values |= {"commit": found.commit, "outline": json.dumps(found.outline)}
            sets = f"indexed_commit = :commit, indexed_at = :now, outline = :outline, {done}"
        else:
            sets = done
        now = sa.bindparam("now", type_=UTCDateTime())
        update = sa.text(f"UPDATE search_state SET {sets} WHERE document_id = :id")
        conn.execute(update.bindparams(now) if found is not None else update, values)
        if found is not None:
            # A document indexed without a queue row (e.g. by reindex) gets one now.
            conn.execute(
                sa.text(
                    "INSERT INTO search_state (document_id, indexed_commit, indexed_at, outline,"
                    " queue_seq) VALUES (:id, :commit, :now, :outline, 0)"
                    " ON CONFLICT (document_id) DO NOTHING"
                ).bindparams(now),
                values,
            )
        session.commit()

    def catch_up(self) -> int:
        """Queue every document whose indexed commit is not its default branch head."""
        from app.documents.models import Document
        from app.search.models import SearchState
        from app.storage import get_store

        behind: list[int] = []
        with self.app.app_context():
            store = get_store()
            with self.engine.connect() as conn:
                rows = conn.execute(
                    sa.select(
                        Document.id,
                        Document.repo_id,
                        Document.default_branch,
                        SearchState.indexed_commit,
                    ).outerjoin(SearchState, SearchState.document_id == Document.id)
                ).all()
            for document_id, repo_id, branch, indexed in rows:
                if self._stopping.is_set() and self._in_worker():
                    break
                try:
                    head = store.open(repo_id).head(branch)
                except (gitstore.GitStoreError, KeyError, OSError):
                    head = None
                if head != indexed:
                    behind.append(document_id)
                time.sleep(0)
        if behind:
            with self.engine.begin() as conn:
                for document_id in behind:
                    enqueue_on(conn, document_id)
            log.info("search: %d documents behind their branch, queued", len(behind))
            self._wake.set()
        return len(behind)
