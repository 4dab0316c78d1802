"""Recording ref updates: the event rows, the document's "last changed", the signal."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from app import db
from app.activity.models import ActivityEvent
from app.activity.signals import ref_updated
from app.db import utcnow

if TYPE_CHECKING:
    from app.accounts.models import User
    from app.documents.models import Document

log = logging.getLogger(__name__)

#: The event kind recorded for each source of a ref update.
KINDS = {"push": "push", "web": "save", "api": "save"}


def record_ref_updates(
    document: Document,
    actor: User | None,
    updates: Iterable[tuple[str, str, str]],
    *,
    source: str,
) -> None:
    """Record accepted ``(ref, old, new)`` updates, then tell subscribers.

    The rows commit before the signal is sent, so a receiver that fails cannot lose
    the record, and a receiver's failure never fails the push (git already moved
    the ref).
    """
    updates = list(updates)
    if not updates:
        return
    session = db.session()
    default_ref = f"refs/heads/{document.default_branch}"
    for ref, old, new in updates:
        session.add(
            ActivityEvent(
                document_id=document.id,
                actor_id=actor.id if actor is not None else None,
                kind=KINDS.get(source, source),
                ref=ref,
                old_oid=old,
                new_oid=new,
                data={"source": source},
            )
        )
        if ref == default_ref:
            document.updated_at = utcnow()
    session.commit()
    for ref, old, new in updates:
        try:
            ref_updated.send(document, actor=actor, ref=ref, old=old, new=new, source=source)
        except Exception:  # noqa: BLE001 - a subscriber's bug must not fail the caller
            log.exception("ref_updated receiver failed for %s %s", document.slug, ref)
