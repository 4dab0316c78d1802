"""Fan-out between processes through Redis pub/sub (``REDIS_URL``).

One channel per room (``<prefix>live:room:<room key>``). A message is

    16 bytes publishing process id | 1 byte kind | body

so a process ignores its own messages. Kinds:

- ``u``: a merged document update that was journaled (durable) before it was
  published; the body is ``count`` (u32) and ``count`` × (journal seq i64,
  actor id i64 or -1), then the Yjs update. Receivers apply it to their own
  ``Doc`` and broadcast it to their local sockets.
- ``a``: a y-websocket awareness update of clients connected to the publisher.
- ``q``: "a process just opened this room": the others answer with their
  local clients' awareness, so the newcomer's editors see everyone at once.

Opening a room subscribes first (and waits for Redis' confirmation), then loads
checkpoint + journal, then applies what was buffered meanwhile: no update falls
in the gap, and duplicates are harmless (applying a Yjs update twice is a no-op).
Pub/sub is not durable; the journal in SQL is, and a commit re-reads it
(:meth:`app.live.batcher.Batcher.refresh`), so a message lost with a Redis
hiccup still reaches Git and, at the next commit, every editor.
"""

from __future__ import annotations

import contextlib
import logging
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gevent
from gevent.event import Event

log = logging.getLogger(__name__)

UPDATE = b"u"
AWARENESS = b"a"
QUERY = b"q"

Handler = Callable[[bytes, bytes], None]
_HEADER = struct.Struct("!I")
_PAIR = struct.Struct("!qq")


def encode_update(update: bytes, entries: list[tuple[int, int | None]]) -> bytes:
    parts = [_HEADER.pack(len(entries))]
    parts.extend(_PAIR.pack(seq, -1 if actor is None else actor) for seq, actor in entries)
    parts.append(update)
    return b"".join(parts)


def decode_update(body: bytes) -> tuple[bytes, list[tuple[int, int | None]]]:
    (count,) = _HEADER.unpack_from(body, 0)
    offset = _HEADER.size
    entries: list[tuple[int, int | None]] = []
    for _ in range(count):
        seq, actor = _PAIR.unpack_from(body, offset)
        offset += _PAIR.size
        entries.append((seq, None if actor < 0 else actor))
    return body[offset:], entries


@dataclass
class _Subscription:
    confirmed: Event = field(default_factory=Event)
    handler: Handler | None = None
    buffer: list[tuple[bytes, bytes]] = field(default_factory=list)


class RedisBus:
    def __init__(self, client: Any, *, prefix: str = "quire:") -> None:
        self.client = client
        self.prefix = prefix
        self.origin = uuid.uuid4().bytes
        self._pubsub = client.pubsub()
        self._subs: dict[str, _Subscription] = {}
        self._listener: gevent.Greenlet | None = None
        self._closed = False

    def channel(self, room: str) -> str:
        return f"{self.prefix}live:room:{room}"

    # ------------------------------------------------------------------ subscribing

    def subscribe(self, room: str, timeout: float = 5.0) -> None:
        """Subscribe to the room's channel and wait until Redis confirms it.

        Messages that arrive before :meth:`attach` are buffered.
        """
        channel = self.channel(room)
        sub = self._subs.get(channel)
        if sub is None:
            sub = self._subs[channel] = _Subscription()
            self._pubsub.subscribe(channel)
            if self._listener is None or self._listener.dead:
                self._listener = gevent.spawn(self._listen)
        if not sub.confirmed.wait(timeout):
            raise TimeoutError(f"no subscription confirmation for {channel}")

    def attach(self, room: str, handler: Handler) -> None:
        """Deliver buffered and future messages of ``room`` to ``handler``."""
        sub = self._subs[self.channel(room)]
        buffered, sub.buffer = sub.buffer, []
        sub.handler = handler
        for kind, body in buffered:
            self._deliver(handler, kind, body)

    def unsubscribe(self, room: str) -> None:
        channel = self.channel(room)
        if self._subs.pop(channel, None) is not None:
            try:
                self._pubsub.unsubscribe(channel)
            except Exception:  # noqa: BLE001
                log.warning("live: could not unsubscribe %s", channel, exc_info=True)

    # ------------------------------------------------------------------ publishing

    def publish(self, room: str, kind: bytes, body: bytes) -> None:
        try:
            self.client.publish(self.channel(room), self.origin + kind + body)
        except Exception:  # noqa: BLE001 - the journal still has it; commits resync
            log.warning("live: could not publish to room %s", room, exc_info=True)

    # ------------------------------------------------------------------ listening

    def _listen(self) -> None:
        while not self._closed:
            try:
                message = self._pubsub.get_message(timeout=1.0)
            except Exception:  # noqa: BLE001 - Redis restarted: redis-py resubscribes
                if self._closed:
                    return
                log.warning("live: Redis pub/sub read failed; retrying", exc_info=True)
                gevent.sleep(0.5)
                continue
            if message is None:
                continue
            channel = message.get("channel")
            if isinstance(channel, bytes):
                channel = channel.decode()
            sub = self._subs.get(channel)
            if sub is None:
                continue
            if message["type"] == "subscribe":
                sub.confirmed.set()
            elif message["type"] == "message":
                data: bytes = message["data"]
                if data[:16] == self.origin or len(data) < 17:
                    continue
                kind, body = data[16:17], data[17:]
                if sub.handler is None:
                    sub.buffer.append((kind, body))
                else:
                    self._deliver(sub.handler, kind, body)

    @staticmethod
    def _deliver(handler: Handler, kind: bytes, body: bytes) -> None:
        try:
            handler(kind, body)
        except Exception:  # noqa: BLE001 - one bad message must not stop the listener
            log.exception("live: remote message failed")

    def close(self) -> None:
        self._closed = True
        if self._listener is not None:
            self._listener.kill(block=False)
        with contextlib.suppress(Exception):
            self._pubsub.close()
