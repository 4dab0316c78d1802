"""Full-text search over the default branch of every document.

Keeping the index current (details in :mod:`app.search.worker`):

- Every path that moves a default branch queues the document: ``ref_updated``
  (form and API saves, restores, reverts, pushes, merges) and the live hub's
  ``after_commit`` hook (live commits do not send ``ref_updated``). Queueing is one
  small upsert; the background indexer does the reading and writing, so a save
  never waits for the index or fails because of it.
- A new document is indexed by its title when its row is inserted (and queued for
  its text); its entry goes with the row; a title change re-titles the entry
  (SQLAlchemy mapper events, same transaction).
- The indexer catches up at start and periodically by comparing each document's
  indexed commit with its branch head; ``flask --app app search reindex`` rebuilds
  everything from the repositories.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, current_app
from sqlalchemy import event, inspect

from app.activity.signals import ref_updated
from app.documents.models import Document
from app.search import models as _models  # noqa: F401  (register the tables)
from app.search.worker import Indexer, enqueue_on

log = logging.getLogger(__name__)

EXTENSION = "quire.search"


def get_indexer(app: Flask | None = None) -> Indexer:
    return (app or current_app).extensions[EXTENSION]


def flush(app: Flask | None = None) -> int:
    """Index everything queued now, in the caller's thread; returns how many."""
    return get_indexer(app).flush()


def on_ref_updated(document: Any, *, ref: str = "", **_: Any) -> None:
    if ref != f"refs/heads/{document.default_branch}":
        return
    try:
        indexer = get_indexer()
    except (RuntimeError, KeyError):  # no app context, or an app without search
        return
    indexer.enqueue(document.id)


def _after_insert(mapper: Any, connection: Any, target: Document) -> None:
    from app.search.index import write_entry

    write_entry(connection, target.id, target.title, "")
    enqueue_on(connection, target.id)


def _after_update(mapper: Any, connection: Any, target: Document) -> None:
    if inspect(target).attrs.title.history.has_changes():
        from app.search.index import write_entry

        write_entry(connection, target.id, target.title, None)


def _after_delete(mapper: Any, connection: Any, target: Document) -> None:
    from app.search.index import delete_entry

    delete_entry(connection, target.id)


_LISTENERS = (
    ("after_insert", _after_insert),
    ("after_update", _after_update),
    ("after_delete", _after_delete),
)


def init_app(app: Flask) -> None:
    from app.search.cli import search_cli
    from app.search.views import bp

    indexer = Indexer(app)
    app.extensions[EXTENSION] = indexer
    app.register_blueprint(bp)
    app.cli.add_command(search_cli)
    ref_updated.connect(on_ref_updated, weak=False)  # idempotent for the same function
    for name, fn in _LISTENERS:
        if not event.contains(Document, name, fn):
            event.listen(Document, name, fn)
    hub = app.extensions.get("quire.live")
    if hub is not None:
        hub.add_hook(
            "after_commit", lambda _hub, room, _commit: indexer.enqueue(room.key.document_id)
        )
    if not app.testing:
        # Start with the first request of each worker process (after gunicorn forked):
        # the start includes a catch-up, so a restarted process heals what it missed.
        app.before_request(indexer.start)
