"""Room locks: exactly one seeding, one commit at a time for a given room.

The embedded default runs one worker process, so an in-process lock is enough.
The interface hands out a *fencing token* (a number that grows with every
acquisition) so that a Redis lock, which can expire under a paused holder, can
later replace :class:`LocalLocks` without changing callers: whoever writes with
a stale token can be refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from gevent.lock import BoundedSemaphore


class RoomLocks(Protocol):
    def hold(self, key: str) -> AbstractContextManager[int]:
        """Hold the lock named ``key``; the context value is the fencing token."""
        ...


class LocalLocks:
    """Per-key locks inside one process (gevent-aware)."""

    def __init__(self) -> None:
        self._locks: dict[str, BoundedSemaphore] = {}
        self._waiters: dict[str, int] = {}
        self._tokens: dict[str, int] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[int]:
        lock = self._locks.setdefault(key, BoundedSemaphore())
        self._waiters[key] = self._waiters.get(key, 0) + 1
        try:
            with lock:
                token = self._tokens.get(key, 0) + 1
                self._tokens[key] = token
                yield token
        finally:
            self._waiters[key] -= 1
            if not self._waiters[key]:  # nobody else wants it: forget the key
                del self._waiters[key]
                self._locks.pop(key, None)
