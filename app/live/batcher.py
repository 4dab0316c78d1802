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

Several processes (``REDIS_URL``): commits and external merges of a room run
under the room's ``commit:`` lock (:mod:`app.live.locks`), and begin with
:meth:`Batcher.refresh`, which reads the checkpoint and the journal — the shared
truth — so a process that was not the one to commit sees the branch head moved
and the journal trimmed, rebases, and commits nothing twice. The lock's fencing
token is checked before the Git write and compare-and-swapped with the
checkpoint, so a holder whose lock expired cannot overwrite a newer one.
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
from app.live.locks import LocalLocks, RoomLocks
from app.live.room import Room
from app.live.settings import LiveSettings
from app.live.textops import merge, summary
from app.ops import metrics

log = logging.getLogger(__name__)

_COMMIT_ATTEMPTS = 3


class Batcher:
    def __init__(
        self,
        *,
        journal: Journal,
        store: gitstore.Store,
        engine: Engine,
        settings: LiveSettings,
        locks: RoomLocks | None = None,
    ) -> None:
        self.journal = journal
        self.store = store
        self.engine = engine
        self.settings = settings
        self.locks: RoomLocks = locks or LocalLocks()

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

    def refresh(self, room: Room) -> None:
        """Catch up with what other processes made durable (call under the commit lock).

        The checkpoint says which commit the room is based on: if another process
        committed or merged an external change, its state is applied here and the
        room is rebased. The journal says which entries are not yet committed: it
        becomes the pending list, and entries this process never received (a lost
        pub/sub message, a process killed before publishing) are applied.
        """
        mark = room.pending_mark()
        entries = self.journal.entries(room.name)
        snapshot = self.journal.snapshot(room.name)
        if snapshot is not None and snapshot.base_commit != room.base_commit:
            room.absorb(snapshot.state, diff=True)
            repo = self._repo(room)
            room.base_commit = snapshot.base_commit
            room.base_text = self.read_text(repo, room.key.path, snapshot.base_commit)
        known = {e.seq for e in room.pending}
        unknown = [e.update for e in entries if e.seq not in known]
        for update in unknown:
            try:
                room.absorb(update)
            except (ValueError, RuntimeError):
                log.warning("live: a journal entry of %s does not apply", room.name)
        room.reset_pending(entries, mark)

    def sync_with_branch(self, room: Room, fence: int | None = None) -> bool:
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
        metrics.MERGE_COMPUTATIONS.labels(outcome="conflict" if result.conflicts else "clean").inc()
        notice = None
        if result.conflicts:
            log.info("live: %s conflicting spans kept twice in %s", result.conflicts, room.name)
            notice = {
                "kind": "conflict",
                "conflicts": result.conflicts,
                "commit": head,
                "message": (
                    f"The branch changed while you were editing; {result.conflicts} "
                    "place(s) were changed on both sides and both versions are kept "
                    "in the text. Please review them."
                ),
            }
        room.replace_content(result.text, notice)
        room.base_commit, room.base_text = head, theirs
        self.journal.save_snapshot(
            room.name, Snapshot(room.doc.get_update(), head, room.applied_seq), fence=fence
        )
        return True

    def sync(self, room: Room) -> bool:
        """Merge an external change under the room's lock (the head poll); True if merged."""
        if self._repo(room).head(room.key.branch) == room.base_commit:
            return False  # cheap check first: no lock while nothing moved
        with room.save_lock, self.locks.hold(f"commit:{room.name}") as fence:
            self.refresh(room)
            return self.sync_with_branch(room, fence)

    def commit(self, room: Room) -> str | None:
        """Commit the room's text if it has uncommitted edits; returns the new commit."""
        with room.save_lock, self.locks.hold(f"commit:{room.name}") as fence:
            self.refresh(room)
            for _ in range(_COMMIT_ATTEMPTS):
                self.sync_with_branch(room, fence)
                try:
                    return self._commit_once(room, fence)
                except gitstore.RefConflict:
                    continue  # the branch moved under us: merge it and try again
            log.warning("live: branch kept moving; commit of %s postponed", room.name)
            return None

    def _commit_once(self, room: Room, fence: int | None = None) -> str | None:
        batch = room.take_batch()
        if not batch:
            return None
        seqs = [e.seq for e in batch]
        text = room.content
        authors = self._authors(editors_of(batch))
        commit, made = room.base_commit, False
        if authors and text != room.base_text:
            self.journal.check_fence(room.name, fence)  # a newer holder: do not write
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
            room.name, Snapshot(room.doc.get_update(), commit, max(seqs)), trim=seqs, fence=fence
        )
        if made and room.first_edit_at is not None:  # the batch's oldest uncommitted edit
            metrics.LIVE_EDIT_TO_COMMIT.observe(time.monotonic() - room.first_edit_at)
        room.base_commit, room.base_text = commit, text
        room.committed(seqs)
        return commit if made else None
