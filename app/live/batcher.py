"""The commit batcher: turns a room's live edits into Git commits.

Policy (Hocuspocus' debounce/maxDebounce): commit after ``commit_quiet_seconds``
without edits, at the latest ``commit_max_seconds`` after the first uncommitted
edit, and when the last editor leaves. The commit's author is the batch's first
editor, the others are ``Co-authored-by:`` trailers. It is made with
compare-and-swap on the room's base commit; if the branch moved (a form or API
save, a push), the change is first merged into the room (:meth:`sync_with_branch`).

Order matters for durability: the commit exists before the checkpoint that
records it, and journal rows are trimmed in the checkpoint's transaction. A crash
in between only replays entries whose effect is already in the text (a no-op).
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import gitstore
from app.accounts.models import User
from app.live.journal import Journal, Snapshot, editors_of
from app.live.room import Room
from app.live.settings import LiveSettings
from app.live.textops import merge, summary

log = logging.getLogger(__name__)

_COMMIT_ATTEMPTS = 3


class Batcher:
    def __init__(
        self, *, journal: Journal, store: gitstore.Store, engine: Engine, settings: LiveSettings
    ) -> None:
        self.journal = journal
        self.store = store
        self.engine = engine
        self.settings = settings

    # ------------------------------------------------------------------ policy

    def is_due(self, room: Room, now: float | None = None) -> bool:
        if room.first_edit_at is None or room.last_edit_at is None:
            return False
        now = time.monotonic() if now is None else now
        return (
            now - room.last_edit_at >= self.settings.commit_quiet_seconds
            or now - room.first_edit_at >= self.settings.commit_max_seconds
        )

    # ------------------------------------------------------------------ git

    def _repo(self, room: Room) -> gitstore.Document:
        return self.store.open(room.repo_id)

    def read_text(self, repo: gitstore.Document, path: str, ref: str) -> str:
        try:
            return repo.read(path, ref).text
        except gitstore.PathNotFound:
            return ""

    def _authors(self, actor_ids: list[int]) -> list[gitstore.Author]:
        if not actor_ids:
            return []
        with Session(self.engine) as session:
            users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(actor_ids)))}
            return [gitstore.Author(users[i].name, users[i].email) for i in actor_ids if i in users]

    def sync_with_branch(self, room: Room) -> bool:
        """Merge an external change of the branch into the room; True if the head moved.

        Three-way: base = the commit the room is based on, ours = the live text,
        theirs = the new head. Only the difference is applied to the Y text, in one
        server transaction, and the room is rebased onto the new head (checkpointed,
        so a restart does not merge the same change twice).
        """
        repo = self._repo(room)
        head = repo.head(room.key.branch)
        if head == room.base_commit:
            return False
        theirs = self.read_text(repo, room.key.path, head)
        result = merge(room.base_text, room.content, theirs)
        if result.conflicts:
            log.info("live: %s conflicting spans kept twice in %s", result.conflicts, room.name)
        room.replace_content(result.text)
        room.base_commit, room.base_text = head, theirs
        self.journal.save_snapshot(
            room.name, Snapshot(room.doc.get_update(), head, room.applied_seq)
        )
        return True

    def commit(self, room: Room) -> str | None:
        """Commit the room's text if it has uncommitted edits; returns the new commit."""
        with room.save_lock:
            for _ in range(_COMMIT_ATTEMPTS):
                self.sync_with_branch(room)
                try:
                    return self._commit_once(room)
                except gitstore.RefConflict:
                    continue  # the branch moved under us: merge it and try again
            log.warning("live: branch kept moving; commit of %s postponed", room.name)
            return None

    def _commit_once(self, room: Room) -> str | None:
        batch, upto = room.take_batch()
        if not batch:
            return None
        text = room.content
        authors = self._authors(editors_of(batch))
        commit, made = room.base_commit, False
        if authors and text != room.base_text:
            repo = self._repo(room)
            try:
                commit = repo.write(
                    room.key.branch,
                    [gitstore.Put(room.key.path, text)],
                    parent=room.base_commit,
                    author=authors[0],
                    co_authors=authors[1:],
                    message=summary(room.base_text, text),
                )
                made = True
            except gitstore.NothingToCommit:
                pass
        self.journal.save_snapshot(
            room.name, Snapshot(room.doc.get_update(), commit, upto), trim_upto=upto
        )
        room.base_commit, room.base_text = commit, text
        room.committed(upto)
        return commit if made else None
