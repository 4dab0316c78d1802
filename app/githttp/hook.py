"""The pre-receive hook: the authoritative check of every ref update of a push.

git runs it after receiving the pack and before moving any ref, with the new objects
still quarantined (``GIT_QUARANTINE_PATH``): when it exits non-zero git deletes them and
refuses every update. The web process already checked the same updates before git ran,
but only here are the new commits available to tell a fast-forward from a rewrite.

The pusher's identity and the database come from environment variables set by the web
process when it spawned ``git receive-pack``: ``QUIRE_DOCUMENT_ID``, ``QUIRE_ACTOR_ID``
(empty for anonymous) and ``QUIRE_DATABASE_URL``. Only a minimal Flask app (the
database) is built, so the hook starts fast.
"""

from __future__ import annotations

import os
import subprocess
import sys

from flask import Flask

from app import db
from app.accounts.models import User
from app.documents.models import Document
from app.documents.protection import can_update_ref
from app.githttp.services import is_zero_oid


def is_fast_forward(old: str, new: str) -> bool:
    """Whether ``new`` descends from ``old`` (git sees the quarantined objects)."""
    result = subprocess.run(
        ["git", "merge-base", "--is-ancestor", old, new],
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


def check(lines: list[str]) -> list[str]:
    """The refusals (``ref: reason``) for ``old new ref`` lines; empty when all pass."""
    session = db.session()
    document = session.get(Document, int(os.environ["QUIRE_DOCUMENT_ID"]))
    if document is None:
        return ["*: the document no longer exists"]
    actor_id = os.environ.get("QUIRE_ACTOR_ID", "")
    actor = session.get(User, int(actor_id)) if actor_id else None
    refusals = []
    for line in lines:
        old, new, ref = line.split(" ", 2)
        fast_forward = None
        if not is_zero_oid(old) and not is_zero_oid(new):
            fast_forward = is_fast_forward(old, new)
        reason = can_update_ref(actor, document, ref, old, new, fast_forward)
        if reason is not None:
            refusals.append(f"{ref}: {reason}")
    return refusals


def main() -> int:
    lines = [line.strip() for line in sys.stdin if line.strip()]
    app = Flask("quire-hook")
    app.config["DATABASE_URL"] = os.environ["QUIRE_DATABASE_URL"]
    db.init_app(app)
    try:
        with app.app_context():
            refusals = check(lines)
    finally:
        app.extensions["quire.db"].engine.dispose()
    for refusal in refusals:
        print(f"Quire refused {refusal}", file=sys.stderr)
    return 1 if refusals else 0


if __name__ == "__main__":
    sys.exit(main())
