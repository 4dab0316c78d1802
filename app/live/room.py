"""A room: one document file on one branch, as a pycrdt ``Doc`` shared by its sockets.

The room owns the Yjs document (the text is the ``Y.Text`` named ``content``), the
server-side awareness, its connections and the pipeline every update goes through:

    receive → validate → inbox → (window) → journal (durable) → apply → one frame → all

Updates arriving within ``broadcast_window_seconds`` are journaled in one transaction
and merged into one frame that is encoded once and queued to every socket: at
hundreds of editors this turns N² small sends into N per window.

With ``REDIS_URL`` the same room may be open in several processes. Each one
publishes its journaled updates and its clients' real awareness changes
(:mod:`app.live.bus`) and applies the others' (:meth:`Room.on_remote`) to its own
``Doc``, then broadcasts them to its local sockets only.

Notices: the server tells editors about things they should look at (both
versions of the same words kept after an external change) through the
``Y.Map`` named ``notices`` (:data:`NOTICES_NAME`): key = notice id, value =
``{"kind": "conflict", "conflicts": n, "commit": oid, "at": epoch ms,
"message": text}``. It is part of the document, so every client of every
process sees it, late joiners included; entries older than an hour are pruned.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gevent
from gevent.event import Event
from gevent.lock import BoundedSemaphore
from pycrdt import Awareness, Doc, Map, Text, merge_updates

from app.live import bus, messages
from app.live.connection import CloseCode, Connection
from app.live.journal import Entry, Journal
from app.live.messages import Kind, ProtocolError
from app.live.settings import LiveSettings
from app.live.textops import apply_edits, edits
from app.ops import metrics

log = logging.getLogger(__name__)

TEXT_NAME = "content"
NOTICES_NAME = "notices"
_EMPTY_UPDATE = b"\x00\x00"
#: Awareness origin of states received from another process.
REMOTE = "remote"
#: Remote awareness states not renewed for this long are dropped (their process died).
_REMOTE_AWARENESS_TIMEOUT_MS = 45_000
_NOTICE_TTL_MS = 3_600_000


@dataclass(frozen=True)
class RoomKey:
    """Names a room: a file on a branch of a document (by immutable id, not slug)."""

    document_id: int
    branch: str
    path: str

    def __str__(self) -> str:
        # ':' cannot occur in a branch name, so the path (last) may contain anything.
        return f"{self.document_id}:{self.branch}:{self.path}"

    @classmethod
    def parse(cls, value: str) -> RoomKey:
        doc_id, branch, path = value.split(":", 2)
        return cls(int(doc_id), branch, path)


@dataclass
class RoomState:
    """What a room was opened from: Yjs state, base commit and the uncommitted journal."""

    doc: Doc
    repo_id: str
    base_commit: str
    base_text: str
    pending: list[Entry] = field(default_factory=list)


def is_valid_update(update: bytes) -> bool:
    """Decode the update on a scratch document, so a bad one never touches the room."""
    try:
        Doc().apply_update(update)
    except (ValueError, RuntimeError):
        return False
    return True


class Room:
    def __init__(
        self,
        key: RoomKey,
        state: RoomState,
        *,
        journal: Journal,
        settings: LiveSettings,
        on_change: Callable[[Room], None] | None = None,
        publish: Callable[[bytes, bytes], None] | None = None,
    ) -> None:
        self.key = key
        self.name = str(key)
        self.doc = state.doc
        self.text: Text = self.doc.get(TEXT_NAME, type=Text)
        self.repo_id = state.repo_id
        self.base_commit = state.base_commit
        self.base_text = state.base_text
        #: Journal entries not yet covered by a commit, in order.
        self.pending: list[Entry] = list(state.pending)
        self._pending_seqs = {e.seq for e in self.pending}
        self.applied_seq = max((e.seq for e in self.pending), default=0)
        self.first_edit_at: float | None = time.monotonic() if self.pending else None
        self.last_edit_at: float | None = self.first_edit_at
        self.journal = journal
        self.settings = settings
        self.on_change = on_change
        #: Sends (kind, body) to the room's other processes (None: embedded, one process).
        self.publish = publish
        self.connections: set[Connection] = set()
        #: One commit or external merge at a time (the batcher and the hub share it).
        self.save_lock = BoundedSemaphore()
        self.closed = False
        self.dropped_updates = 0

        self.awareness = Awareness(self.doc)
        # pycrdt starts with the server's own state {}, which clients show as a phantom
        # peer; the server is not a participant.
        self.awareness.set_local_state(None)
        self._aware_changed: set[int] = set()
        self._aware_renewed: set[int] = set()
        #: Changes that came from another process: broadcast here, never re-published.
        self._aware_remote: set[int] = set()
        self._remote_clients: set[int] = set()
        self._awareness_sub = self.awareness.observe(self._on_awareness)

        self._inbox: list[tuple[Connection, bytes]] = []
        self._wake = Event()
        self._flusher = gevent.spawn(self._flush_loop)

    def __repr__(self) -> str:
        return f"Room({self.name!r}, {len(self.connections)} connections)"

    # ------------------------------------------------------------------ membership

    @property
    def content(self) -> str:
        return str(self.text)

    @property
    def editors_connected(self) -> int:
        return sum(1 for c in self.connections if c.can_edit and not c.closed)

    @property
    def remote_peers(self) -> int:
        """Clients present in this room through other processes (their awareness)."""
        return sum(1 for cid in self._remote_clients if cid in self.awareness.states)

    def add(self, conn: Connection) -> None:
        """Start the y-websocket handshake: our state vector, then who is here."""
        self.connections.add(conn)
        conn.send(messages.encode_sync_step1(self.doc.get_state()))
        if self.awareness.states:
            conn.send(self._awareness_frame(list(self.awareness.states)))

    def remove(self, conn: Connection) -> None:
        self.connections.discard(conn)
        gone = [cid for cid in conn.client_ids if cid in self.awareness.states]
        if gone:
            self.awareness.remove_awareness_states(gone, conn)
            self._wake.set()

    # ------------------------------------------------------------------ receiving

    def receive(self, conn: Connection, frame: bytes | str) -> None:
        """Handle one frame from ``conn``; protocol errors close that socket only."""
        try:
            message = messages.decode(frame)
        except ProtocolError as exc:
            conn.close(CloseCode.BAD_MESSAGE, f"undecodable message: {exc}"[:120])
            return
        if message.kind is Kind.SYNC_STEP1:
            conn.send(messages.encode_sync_step2(self.doc.get_update(message.payload)))
        elif message.is_document_update:
            self._receive_update(conn, message.payload)
        elif message.kind is Kind.AWARENESS:
            self._receive_awareness(conn, message.payload)
        elif message.kind is Kind.QUERY_AWARENESS and self.awareness.states:
            conn.send(self._awareness_frame(list(self.awareness.states)))

    def _receive_update(self, conn: Connection, update: bytes) -> None:
        if update == _EMPTY_UPDATE:
            return
        if not conn.can_edit:
            # Authoritative: a viewer's update never reaches the document or the journal.
            self.dropped_updates += 1
            return
        if not conn.bucket.take():
            conn.close(CloseCode.RATE_LIMITED, "too many updates per second")
            return
        if not is_valid_update(update):
            conn.close(CloseCode.BAD_MESSAGE, "undecodable update")
            return
        self._inbox.append((conn, update))
        self._wake.set()

    def _receive_awareness(self, conn: Connection, payload: bytes) -> None:
        try:
            self.awareness.apply_awareness_update(payload, conn)
        except (ValueError, IndexError, RuntimeError, TypeError) as exc:
            conn.close(CloseCode.BAD_MESSAGE, f"undecodable awareness: {exc}"[:120])
            return
        # The y-websocket client reconnects after 30 s without a message: answer the
        # sender with its own states (cheap) even when nothing changed for the others.
        own = [cid for cid in conn.client_ids if cid in self.awareness.meta]
        if own:
            conn.send(self._awareness_frame(own))

    def _on_awareness(self, topic: str, event: tuple[dict[str, list[int]], Any]) -> None:
        changes, origin = event
        ids = (changes["added"], changes["updated"], changes["removed"])
        if origin == REMOTE:
            self._remote_clients.update(*ids)
            if topic == "change":
                self._aware_remote.update(*ids)
                self._wake.set()
            else:
                self._aware_renewed.update(changes["updated"])
            return
        self._remote_clients.difference_update(*ids)
        if topic == "change":
            if isinstance(origin, Connection):
                origin.client_ids.update(changes["added"])
            self._aware_changed.update(*ids)
            self._wake.set()
        else:  # "update": includes clock-only renewals, forwarded less often
            self._aware_renewed.update(changes["updated"])

    def _awareness_frame(self, client_ids: list[int]) -> bytes:
        return messages.encode_awareness(self.awareness.encode_awareness_update(client_ids))

    # ------------------------------------------------------------------ broadcasting

    def _flush_loop(self) -> None:
        while not self.closed:
            self._wake.wait()
            gevent.sleep(self.settings.broadcast_window_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - the loop must outlive one bad batch
                log.exception("live: flush failed in room %s", self.name)

    def flush(self) -> None:
        """Journal, apply and broadcast what arrived during the window."""
        inbox, self._inbox = self._inbox, []
        if inbox:
            self._commit_inbox(inbox)
        if self._aware_changed or self._aware_remote:
            local, self._aware_changed = self._aware_changed, set()
            remote, self._aware_remote = self._aware_remote, set()
            ids = list(local | remote)
            self._aware_renewed.difference_update(ids)
            self.broadcast(self._awareness_frame(ids))
            self._publish_awareness(list(local))

    def _commit_inbox(self, inbox: list[tuple[Connection, bytes]]) -> None:
        items = [(update, conn.participant.actor_id) for conn, update in inbox]
        try:
            seqs = self.journal.append(self.name, items)
        except Exception:
            # Not durable, so not applied and not broadcast: the clients still hold
            # these edits and send them again when they reconnect and resync.
            log.exception("live: journal write failed in room %s", self.name)
            for conn in {c for c, _ in inbox}:
                conn.close(CloseCode.INTERNAL_ERROR, "could not store the edit; reconnect")
            return
        applied: list[bytes] = []
        noted: list[tuple[int, int | None]] = []
        for (update, actor_id), seq in zip(items, seqs, strict=True):
            try:
                self.doc.apply_update(update)
            except (ValueError, RuntimeError):
                log.warning("live: update %s did not apply in room %s", seq, self.name)
                continue
            applied.append(update)
            noted.append((seq, actor_id))
            self._note_edit(Entry(seq, update, actor_id))
        if applied:
            merged = applied[0] if len(applied) == 1 else merge_updates(*applied)
            self.broadcast(messages.encode_update(merged))
            metrics.LIVE_UPDATES_BROADCAST.inc()
            if self.publish is not None:
                self.publish(bus.UPDATE, bus.encode_update(merged, noted))

    def _note_edit(self, entry: Entry) -> None:
        if entry.seq in self._pending_seqs:
            return
        now = time.monotonic()
        self.pending.append(entry)
        self._pending_seqs.add(entry.seq)
        self.applied_seq = max(self.applied_seq, entry.seq)
        if entry.actor_id is not None:
            if self.first_edit_at is None:
                self.first_edit_at = now
            self.last_edit_at = now
        if self.on_change is not None:
            self.on_change(self)

    def broadcast(self, frame: bytes) -> None:
        """One encoded frame, queued to every socket (the sender too: it is harmless)."""
        for conn in list(self.connections):
            conn.send(frame)

    def renew_awareness(self) -> None:
        """Forward clock-only renewals so peers do not time each other out (30 s)."""
        ids = [cid for cid in self._aware_renewed if cid in self.awareness.states]
        self._aware_renewed.clear()
        if ids:
            self.broadcast(self._awareness_frame(ids))
            self._publish_awareness(ids)
        self._expire_remote_awareness()

    def _publish_awareness(self, ids: list[int]) -> None:
        """Send our own clients' awareness (never what came from other processes)."""
        own = [cid for cid in ids if cid not in self._remote_clients]
        if own and self.publish is not None:
            self.publish(bus.AWARENESS, self.awareness.encode_awareness_update(own))

    def _expire_remote_awareness(self) -> None:
        """Drop states of remote clients whose process stopped renewing them (it died)."""
        if not self._remote_clients:
            return
        now = int(time.time() * 1000)
        stale = [
            cid
            for cid in self._remote_clients
            if cid in self.awareness.states
            and now - self.awareness.meta.get(cid, {}).get("lastUpdated", now)
            > _REMOTE_AWARENESS_TIMEOUT_MS
        ]
        if stale:
            self.awareness.remove_awareness_states(stale, REMOTE)

    # ------------------------------------------------------------------ other processes

    def on_remote(self, kind: bytes, body: bytes) -> None:
        """A message published by another process that has this room open."""
        if self.closed:
            return
        if kind == bus.UPDATE:
            update, entries = bus.decode_update(body)
            self.absorb(update)
            for seq, actor_id in entries:
                self._note_edit(Entry(seq, b"", actor_id))
        elif kind == bus.AWARENESS:
            self.awareness.apply_awareness_update(body, REMOTE)
        elif kind == bus.QUERY:
            local = [cid for cid in self.awareness.states if cid not in self._remote_clients]
            self._publish_awareness(local)

    def absorb(self, update: bytes, *, diff: bool = False) -> None:
        """Apply an update that is already durable (journal, checkpoint) and show it
        to the local sockets; with ``diff`` only what was new here is sent."""
        before = self.doc.get_state() if diff else b""
        self.doc.apply_update(update)
        if diff:
            update = self.doc.get_update(before)
        if update != _EMPTY_UPDATE:
            self.broadcast(messages.encode_update(update))
            metrics.LIVE_UPDATES_BROADCAST.inc()

    # ------------------------------------------------------------------ server edits

    def replace_content(self, new_text: str, notice: dict[str, Any] | None = None) -> None:
        """Turn the text into ``new_text`` by applying only the difference, as one
        server transaction that is journaled before it is broadcast; ``notice`` is
        added to the ``notices`` map in the same transaction."""
        old = self.content
        changes = edits(old, new_text)
        if not changes and notice is None:
            return
        before = self.doc.get_state()
        with self.doc.transaction(origin="server"):
            apply_edits(self.text, old, changes)
            if notice is not None:
                self._add_notice(notice)
        update = self.doc.get_update(before)
        (seq,) = self.journal.append(self.name, [(update, None)])
        self._note_edit(Entry(seq, update, None))
        self.broadcast(messages.encode_update(update))
        metrics.LIVE_UPDATES_BROADCAST.inc()
        if self.publish is not None:
            self.publish(bus.UPDATE, bus.encode_update(update, [(seq, None)]))

    def _add_notice(self, notice: dict[str, Any]) -> None:
        notices = self.doc.get(NOTICES_NAME, type=Map)
        now = int(time.time() * 1000)
        for key, value in list(notices.items()):
            at = value.get("at", 0) if isinstance(value, dict) else 0
            if now - at > _NOTICE_TTL_MS:
                del notices[key]
        notices[uuid.uuid4().hex[:12]] = {**notice, "at": now}

    @property
    def notices(self) -> dict[str, Any]:
        return self.doc.get(NOTICES_NAME, type=Map).to_py() or {}

    def take_batch(self) -> list[Entry]:
        """The uncommitted entries up to now."""
        return list(self.pending)

    def committed(self, seqs: list[int]) -> None:
        """Forget entries covered by a commit (the journal rows are trimmed by the caller)."""
        done = set(seqs)
        self.pending = [e for e in self.pending if e.seq not in done]
        self._pending_seqs.difference_update(done)
        if not any(e.actor_id is not None for e in self.pending):
            self.first_edit_at = self.last_edit_at = None

    def pending_mark(self) -> int:
        """Where :meth:`reset_pending` starts counting entries noted meanwhile."""
        return len(self.pending)

    def reset_pending(self, journal: list[Entry], mark: int) -> None:
        """Make the journal (read after :meth:`pending_mark`) the list of pending entries.

        The journal is the truth: entries another process committed are gone from
        it, entries noted here since ``mark`` (appended while we read) are kept.
        """
        known = {e.seq for e in journal}
        fresh = [e for e in self.pending[mark:] if e.seq not in known]
        self.pending = sorted([*journal, *fresh], key=lambda e: e.seq)
        self._pending_seqs = {e.seq for e in self.pending}
        if self.pending:
            self.applied_seq = max(self.applied_seq, self.pending[-1].seq)
        if not any(e.actor_id is not None for e in self.pending):
            self.first_edit_at = self.last_edit_at = None
        elif self.first_edit_at is None:
            self.first_edit_at = self.last_edit_at = time.monotonic()

    @property
    def is_dirty(self) -> bool:
        return bool(self.pending)

    def close(self, code: int = CloseCode.GOING_AWAY, reason: str = "") -> None:
        self.closed = True
        self._wake.set()
        for conn in list(self.connections):
            conn.drain(timeout=1.0)
            conn.close(code, reason)
        self.connections.clear()
        with contextlib.suppress(KeyError):
            self.awareness.unobserve(self._awareness_sub)
