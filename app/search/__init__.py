"""Full-text search over the default branch of every document (issue 9, first slice).

Keeping the index current:

- ``ref_updated`` (every accepted save, push, live commit): when the default branch
  moved, the document is re-indexed synchronously after the ref update committed.
  An indexing failure is logged and never fails the save.
- A new document is indexed by its title when its row is inserted, and its entry is
  deleted with the row (SQLAlchemy mapper events, same transaction); a title change
  updates the entry's title. Its first content is indexed on the next ref update or
  ``flask --app app search reindex``.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from sqlalchemy import event, inspect

from app.activity.signals import ref_updated
from app.documents.models import Document
from app.search import models as _models  # noqa: F401  (register the table)

log = logging.getLogger(__name__)


def on_ref_updated(document: Any, *, ref: str = "", **_: Any) -> None:
    if ref != f"refs/heads/{document.default_branch}":
        return
    from app import db
    from app.search.index import index_document

    try:
        index_document(document)
    except Exception:  # noqa: BLE001 - the index catches up on reindex; saves never fail
        db.session().rollback()
        log.exception("search: indexing %s failed", getattr(document, "slug", "?"))


def _after_insert(mapper: Any, connection: Any, target: Document) -> None:
    from app.search.index import _write

    _write(connection, target.id, target.title, "")


def _after_update(mapper: Any, connection: Any, target: Document) -> None:
    if inspect(target).attrs.title.history.has_changes():
        from app.search.index import _write

        _write(connection, target.id, target.title, None)


def _after_delete(mapper: Any, connection: Any, target: Document) -> None:
    from app.search.index import _delete

    _delete(connection, target.id)


_LISTENERS = (
    ("after_insert", _after_insert),
    ("after_update", _after_update),
    ("after_delete", _after_delete),
)


def init_app(app: Flask) -> None:
    from app.search.cli import search_cli
    from app.search.views import bp

    app.register_blueprint(bp)
    app.cli.add_command(search_cli)
    ref_updated.connect(on_ref_updated, weak=False)  # idempotent for the same function
    for name, fn in _LISTENERS:
        if not event.contains(Document, name, fn):
            event.listen(Document, name, fn)
