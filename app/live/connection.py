"""One websocket in one room: who is on it, what it may do, and its send queue.

Each connection has a bounded queue drained by its own writer greenlet, so a slow
client never blocks the room's broadcast: when its queue is full it is closed
(it reconnects and resyncs) instead of slowing everyone else down.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import time
from dataclasses import dataclass
from typing import Any

import gevent
from gevent.queue import Full, Queue

from app.ops import metrics

log = logging.getLogger(__name__)


class CloseCode(enum.IntEnum):
    """Why the server closed a socket (sent as the websocket close code)."""

    GOING_AWAY = 1001  # server shutting down: reconnect elsewhere
    MESSAGE_TOO_BIG = 1009  # LIVE_MAX_MESSAGE_BYTES (simple-websocket sends it)
    INTERNAL_ERROR = 1011
    BAD_MESSAGE = 4400  # undecodable frame or update
    ACCESS_REVOKED = 4403  # the actor lost read access while connected: do not reconnect
    ROLE_CHANGED = 4409  # the actor's role changed (edit <-> view): reconnect with the new one
    SLOW_CONSUMER = 4408  # send queue full
    RATE_LIMITED = 4429  # LIVE_MAX_UPDATES_PER_SECOND
    ROOM_FULL = 4503  # LIVE_MAX_CONNECTIONS_PER_ROOM / LIVE_MAX_ROOMS_PER_WORKER


@dataclass(frozen=True)
class Participant:
    """Who is on the socket, resolved once at the upgrade."""

    actor_id: int | None
    can_edit: bool


class TokenBucket:
    """Updates per second with a burst allowance."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.capacity = float(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Connection:
    def __init__(
        self, ws: Any, participant: Participant, *, queue_frames: int, bucket: TokenBucket
    ) -> None:
        self.ws = ws
        self.participant = participant
        self.bucket = bucket
        #: Awareness client ids announced through this socket (removed when it leaves).
        self.client_ids: set[int] = set()
        self.closed = False
        self.close_code: int | None = None
        #: The room joined (set by the hub; Any to keep this module free of rooms).
        self.room: Any = None
        self._closer: gevent.Greenlet | None = None
        self._queue: Queue[bytes | None] = Queue(maxsize=queue_frames)
        self._writer = gevent.spawn(self._write_loop)

    def __repr__(self) -> str:
        return f"Connection(actor={self.participant.actor_id}, closed={self.closed})"

    @property
    def can_edit(self) -> bool:
        return self.participant.can_edit

    def send(self, frame: bytes) -> None:
        """Queue a frame; a client whose queue is full is disconnected."""
        if self.closed:
            return
        try:
            self._queue.put_nowait(frame)
        except Full:
            log.info("live: disconnecting a slow client (%s frames queued)", self._queue.qsize())
            metrics.LIVE_SLOW_CLIENT_DISCONNECTS.inc()
            self.close(CloseCode.SLOW_CONSUMER, "too far behind; reconnect to resync")

    def _write_loop(self) -> None:
        while True:
            frame = self._queue.get()
            if frame is None:
                return
            try:
                self.ws.send(frame)
            except Exception:  # noqa: BLE001 - any send failure means the socket is gone
                self.closed = True
                return

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close once, from any greenlet; the receive loop notices ``closed`` and leaves."""
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        if gevent.getcurrent() is not self._writer:
            self._writer.kill(block=False)
        # In its own greenlet: the room's broadcaster must not block on a stuck peer.
        self._closer = gevent.spawn(self._close_socket, code, reason)

    def wait_closed(self, timeout: float = 2.0) -> None:
        """Let our close frame (with its code) go out before flask-sock closes with 1000."""
        if self._closer is not None:
            self._closer.join(timeout=timeout)

    def _close_socket(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):  # already closed by the peer
            self.ws.close(code, reason)

    def drain(self, timeout: float = 2.0) -> None:
        """Let queued frames go out before a graceful close (shutdown)."""
        if not self.closed:
            try:
                self._queue.put(None, timeout=timeout)
            except Full:
                return
            self._writer.join(timeout=timeout)
