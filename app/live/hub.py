"""The hub: the registry of open rooms in this worker and the only hook runner.

Hooks are the extension API, named for when they run (as in Hocuspocus):
``before_*`` may refuse by raising, ``on_*`` do work, ``after_*`` only observe.
Registered with :meth:`Hub.add_hook`; called only from here, never from rooms or
connections, so there is one place to read to know what runs when.

Each open room has a ticker greenlet that applies the batcher's policy, watches
the branch for external changes, forwards awareness renewals, and closes the
room once nobody is left and everything is committed. A sweep at start-up
re-opens and commits rooms whose journal still holds entries (a crash).

With a bus (``REDIS_URL``, :mod:`app.live.bus`) a room may be open in several
processes: opening subscribes to the room's channel first, then loads the
checkpoint and the journal, then applies what arrived meanwhile; locks are then
Redis locks with fencing (:class:`app.live.locks.RedisLocks`).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gevent
from gevent.lock import BoundedSemaphore
from pycrdt import Doc, Text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import gitstore
from app.documents.models import Document
from app.live.batcher import Batcher
from app.live.bus import QUERY, RedisBus
from app.live.connection import CloseCode, Connection, Participant, TokenBucket
from app.live.journal import Journal, Snapshot
from app.live.locks import LocalLocks, RoomLocks
from app.live.room import TEXT_NAME, Room, RoomKey, RoomState
from app.live.settings import LiveSettings
from app.ops import metrics

log = logging.getLogger(__name__)

HOOKS = (
    "before_join",  # (hub, key, participant) — raise Refused to refuse
    "after_join",  # (hub, room, connection)
    "after_leave",  # (hub, room, connection)
    "after_commit",  # (hub, room, commit oid)
    "after_external_merge",  # (hub, room, new base commit)
)


class Refused(Exception):
    """A join refused with a websocket close code (room full, server full...)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Target:
    """An authorised request to join: which room, as whom."""

    key: RoomKey
    repo_id: str
    participant: Participant


class Hub:
    def __init__(
        self,
        *,
        settings: LiveSettings,
        engine: Engine,
        store: gitstore.Store,
        locks: RoomLocks | None = None,
        bus: RedisBus | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.store = store
        self.journal = Journal(engine)
        #: Shared between processes when Redis is configured (seeding, commits).
        self.locks: RoomLocks = locks or LocalLocks()
        #: Opening a room is a per-process matter.
        self._open_locks = LocalLocks()
        self.bus = bus
        self.batcher = Batcher(
            journal=self.journal, store=store, engine=engine, settings=settings, locks=self.locks
        )
        self.rooms: dict[str, Room] = {}
        self.hooks: dict[str, list[Callable[..., Any]]] = defaultdict(list)
        self.accepting = True
        self._started = False
        #: SIGTERM starts the shutdown and gunicorn's worker_exit repeats it: one at a time.
        self._shutdown_lock = BoundedSemaphore()

    # ------------------------------------------------------------------ hooks

    def add_hook(self, name: str, fn: Callable[..., Any]) -> None:
        if name not in HOOKS:
            raise ValueError(f"unknown hook {name!r}; known: {', '.join(HOOKS)}")
        self.hooks[name].append(fn)

    def run_hooks(self, name: str, *args: Any) -> None:
        for fn in self.hooks.get(name, ()):
            if name.startswith("before_"):
                fn(self, *args)  # may raise to refuse
                continue
            try:
                fn(self, *args)
            except Exception:  # noqa: BLE001 - observers never break the room
                log.exception("live: hook %s failed", name)

    # ------------------------------------------------------------------ joining

    def join(self, ws: Any, target: Target) -> Connection:
        """Open (or find) the room and add a connection for ``ws``; may refuse."""
        conn = Connection(
            ws,
            target.participant,
            queue_frames=self.settings.send_queue_frames,
            bucket=TokenBucket(self.settings.max_updates_per_second, self.settings.update_burst),
        )
        try:
            if not self.accepting:
                raise Refused(CloseCode.GOING_AWAY, "server is restarting")
            self.run_hooks("before_join", target.key, target.participant)
            room = self.open_room(target.key, target.repo_id)
            if len(room.connections) >= self.settings.max_connections_per_room:
                raise Refused(CloseCode.ROOM_FULL, "room is full")
        except Refused as exc:
            conn.close(exc.code, exc.reason)
            return conn
        conn.room = room
        room.add(conn)
        metrics.LIVE_EDITORS.inc()
        self.run_hooks("after_join", room, conn)
        return conn

    def receive(self, conn: Connection, frame: bytes | str) -> None:
        room: Room | None = conn.room
        if room is not None and not conn.closed:
            room.receive(conn, frame)

    def leave(self, conn: Connection) -> None:
        room: Room | None = conn.room
        conn.close(1000, "")
        conn.wait_closed()
        if room is None:
            return
        room.remove(conn)
        metrics.LIVE_EDITORS.dec()
        self.run_hooks("after_leave", room, conn)
        if room.editors_connected == 0 and room.is_dirty and not room.remote_peers:
            # The last editor left: commit now. (While editors are still here through
            # another process, that process's batcher commits the batch, ours included.)
            gevent.spawn(self._commit, room)

    # ------------------------------------------------------------------ rooms

    def open_room(self, key: RoomKey, repo_id: str) -> Room:
        name = str(key)
        room = self.rooms.get(name)
        if room is not None and not room.closed:
            return room
        with self._open_locks.hold(f"open:{name}"):
            room = self.rooms.get(name)
            if room is not None and not room.closed:
                return room
            if len(self.rooms) >= self.settings.max_rooms_per_worker:
                raise Refused(CloseCode.ROOM_FULL, "too many open documents on this server")
            publish = None
            if self.bus is not None:
                bus = self.bus
                # Subscribe before loading: what is published while we read is buffered.
                bus.subscribe(name)

                def publish(kind: bytes, body: bytes, _bus: RedisBus = bus) -> None:
                    _bus.publish(name, kind, body)

            try:
                state = self._load(key, repo_id)
            except BaseException:
                if self.bus is not None:
                    self.bus.unsubscribe(name)
                raise
            room = Room(key, state, journal=self.journal, settings=self.settings, publish=publish)
            self.rooms[name] = room
            metrics.LIVE_ROOMS.inc()
            if self.bus is not None:
                self.bus.attach(name, room.on_remote)
                self.bus.publish(name, QUERY, b"")  # who is already here, elsewhere?
            gevent.spawn(self._tick_loop, room)
            return room

    def _load(self, key: RoomKey, repo_id: str) -> RoomState:
        """Checkpoint + journal; the first open ever seeds from Git, once, under a lock."""
        name = str(key)
        repo = self.store.open(repo_id)
        # The journal before the checkpoint: an entry trimmed by another process's
        # commit in between is in the (newer) checkpoint; one that is not yet in the
        # journal when we read it reaches us through the bus.
        entries = self.journal.entries(name)
        snapshot = self.journal.snapshot(name)
        if snapshot is None:
            with self.locks.hold(f"seed:{name}"):
                snapshot = self.journal.snapshot(name) or self._seed(key, repo)
        doc = Doc()
        doc.get(TEXT_NAME, type=Text)
        doc.apply_update(snapshot.state)
        for entry in entries:
            try:
                doc.apply_update(entry.update)  # idempotent for entries in the checkpoint
            except (ValueError, RuntimeError):
                log.warning("live: journal entry %s of %s does not apply", entry.seq, name)
        base_text = self.batcher.read_text(repo, key.path, snapshot.base_commit)
        return RoomState(doc, repo_id, snapshot.base_commit, base_text, entries)

    def _seed(self, key: RoomKey, repo: gitstore.Document) -> Snapshot:
        """Create the room's Yjs state from the branch's text and persist it at once.

        Done on the server, once: two independent seedings of the same text would
        duplicate it when their updates meet.
        """
        head = repo.head(key.branch)
        doc = Doc()
        text = doc.get(TEXT_NAME, type=Text)
        text += self.batcher.read_text(repo, key.path, head)
        snapshot = Snapshot(doc.get_update(), head, 0)
        if not self.journal.create_snapshot(str(key), snapshot):
            existing = self.journal.snapshot(str(key))  # another process seeded first
            assert existing is not None
            return existing
        return snapshot

    def _commit(self, room: Room) -> str | None:
        try:
            commit = self.batcher.commit(room)
        except Exception:  # noqa: BLE001 - retried on the next tick
            log.exception("live: commit failed in room %s", room.name)
            return None
        if commit is not None:
            self.run_hooks("after_commit", room, commit)
        return commit

    def _tick_loop(self, room: Room) -> None:
        settings = self.settings
        tick = min(0.25, settings.commit_quiet_seconds / 4)
        last_poll = last_renew = time.monotonic()
        while not room.closed:
            gevent.sleep(tick)
            now = time.monotonic()
            if self.batcher.is_due(room, now):
                self._commit(room)
            if now - last_poll >= settings.head_poll_seconds:
                last_poll = now
                self._poll_branch(room)
            if now - last_renew >= settings.awareness_renew_seconds:
                last_renew = now
                room.renew_awareness()
            if not room.connections and not room.is_dirty:
                self._close(room)

    def _poll_branch(self, room: Room) -> None:
        try:
            moved = self.batcher.sync(room)
        except Exception:  # noqa: BLE001
            log.exception("live: could not merge the branch into room %s", room.name)
            return
        if moved:
            self.run_hooks("after_external_merge", room, room.base_commit)

    def _close(self, room: Room, code: int = CloseCode.GOING_AWAY, reason: str = "") -> None:
        room.close(code, reason)
        if self.rooms.get(room.name) is room:
            del self.rooms[room.name]
            metrics.LIVE_ROOMS.dec()
            if self.bus is not None:
                self.bus.unsubscribe(room.name)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start background work in this worker (called once the worker serves)."""
        if self._started:
            return
        self._started = True
        from app.activity.signals import ref_updated

        ref_updated.connect(self.on_ref_updated, weak=False)
        gevent.spawn(self.recover)

    def on_ref_updated(self, document: Any, *, ref: str = "", **_: Any) -> None:
        """A save or push moved a branch in this process: merge it into open rooms now.

        Rooms also poll their branch head (``head_poll_seconds``), which covers
        changes made by other processes; this only removes the delay.
        """
        branch = ref.removeprefix("refs/heads/")
        for room in list(self.rooms.values()):
            if room.key.document_id == getattr(document, "id", None) and room.key.branch == branch:
                gevent.spawn(self._poll_branch, room)

    def recover(self) -> None:
        """Commit rooms left with journal entries by a crash (no one needs to rejoin)."""
        for name in self.journal.rooms_with_entries():
            if name in self.rooms:
                continue
            try:
                key = RoomKey.parse(name)
                with Session(self.engine) as session:
                    document = session.get(Document, key.document_id)
                    repo_id = None if document is None else document.repo_id
                if repo_id is None:
                    continue
                room = self.open_room(key, repo_id)
                self._commit(room)
            except Exception:  # noqa: BLE001 - one broken room must not stop the sweep
                log.exception("live: recovery of room %s failed", name)

    def shutdown(self) -> None:
        """Stop accepting, commit every room, close sockets with "going away"."""
        self.accepting = False
        with self._shutdown_lock:
            for room in list(self.rooms.values()):
                room.flush()
                self._commit(room)
                self._close(room, CloseCode.GOING_AWAY, "server restarting")
            if self.bus is not None:
                self.bus.close()
