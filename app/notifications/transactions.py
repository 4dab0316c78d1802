"""Does the caller's transaction hold writes? (Decides whether notify() may commit.)

:func:`~app.notifications.services.notify` should join the transaction that
records what happened, so its rows commit or roll back with it and the email
waits for that commit. A caller that already committed and has only read since
(``_notify_merged`` after a merge, say) leaves a read-only transaction open that
nobody will commit: then notify commits its own rows. Telling the two apart
needs to know whether anything was written since the transaction began, which
SQLAlchemy does not say; these session events keep that one bit.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, sessionmaker

_WROTE = "quire.notifications.wrote"


def track_writes(factory: sessionmaker[Any]) -> None:
    """Remember, per session, that the open transaction flushed or executed DML."""
    for name, fn in (
        ("after_flush", _after_flush),
        ("do_orm_execute", _do_orm_execute),
        ("after_transaction_end", _after_transaction_end),
    ):
        if not event.contains(factory, name, fn):
            event.listen(factory, name, fn)


def has_pending_writes(session: Session) -> bool:
    """True when the open transaction wrote (or is about to write) something."""
    if session.new or session.deleted or any(session.is_modified(o) for o in session.dirty):
        return True
    return bool(session.info.get(_WROTE))


def _after_flush(session: Session, flush_context: Any) -> None:
    session.info[_WROTE] = True


def _do_orm_execute(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[_WROTE] = True


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_WROTE, None)
