"""Room locks: exactly one seeding, one commit at a time for a given room.

The embedded default runs one worker process, so an in-process lock is enough
(:class:`LocalLocks`). With ``REDIS_URL`` several processes share a room and
:class:`RedisLocks` is used instead: ``SET NX PX`` with a renewing watchdog and a
*fencing token* from ``INCR``. Either way the context value is the fencing token,
a number that grows with every acquisition, so that a holder whose lock expired
(a paused process) can be refused when it writes: checkpoints store the token
and refuse a lower one (:meth:`app.live.journal.Journal.save_snapshot`).

Tokens never go backwards, not even across restarts or when switching from the
embedded lock to Redis: both start from the wall clock in microseconds.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

import gevent
from gevent.lock import BoundedSemaphore

log = logging.getLogger(__name__)


class LockTimeout(Exception):
    """The lock stayed taken for longer than we were willing to wait."""


class RoomLocks(Protocol):
    def hold(self, key: str) -> AbstractContextManager[int]:
        """Hold the lock named ``key``; the context value is the fencing token."""
        ...


def _clock_floor() -> int:
    return time.time_ns() // 1000


class LocalLocks:
    """Per-key locks inside one process (gevent-aware)."""

    def __init__(self) -> None:
        self._locks: dict[str, BoundedSemaphore] = {}
        self._waiters: dict[str, int] = {}
        self._last_token = 0

    def _next_token(self) -> int:
        self._last_token = max(self._last_token + 1, _clock_floor())
        return self._last_token

    @contextmanager
    def hold(self, key: str) -> Iterator[int]:
        lock = self._locks.setdefault(key, BoundedSemaphore())
        self._waiters[key] = self._waiters.get(key, 0) + 1
        try:
            with lock:
                yield self._next_token()
        finally:
            self._waiters[key] -= 1
            if not self._waiters[key]:  # nobody else wants it: forget the key
                del self._waiters[key]
                self._locks.pop(key, None)


# INCR, but never below the wall clock floor (ARGV[1]): tokens keep growing even if
# the counter key was lost (Redis without persistence) or the embedded lock wrote last.
_FENCE_SCRIPT = """
local v = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[1])
if v < floor then
  redis.call('SET', KEYS[1], ARGV[1])
  v = floor
end
return v
"""
_RENEW_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisLocks:
    """A lock shared by every process using the same Redis and key prefix.

    ``SET key value NX PX ttl`` takes it; a watchdog greenlet extends it while the
    holder works; release deletes it only if it is still ours. The fencing token
    comes from one ``INCR`` counter, so it is monotonic across all keys.
    """

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "quire:",
        ttl_seconds: float = 10.0,
        wait_seconds: float = 30.0,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl_ms = max(1000, int(ttl_seconds * 1000))
        self.wait_seconds = wait_seconds
        self._fence = client.register_script(_FENCE_SCRIPT)
        self._renew = client.register_script(_RENEW_SCRIPT)
        self._release = client.register_script(_RELEASE_SCRIPT)

    @contextmanager
    def hold(self, key: str) -> Iterator[int]:
        name = f"{self.prefix}live:lock:{key}"
        value = uuid.uuid4().hex
        deadline = time.monotonic() + self.wait_seconds
        pause = 0.01
        while not self.client.set(name, value, nx=True, px=self.ttl_ms):
            if time.monotonic() > deadline:
                raise LockTimeout(f"lock {key!r} still taken after {self.wait_seconds} s")
            gevent.sleep(pause)
            pause = min(pause * 2, 0.1)
        watchdog: gevent.Greenlet | None = None
        try:
            token = int(self._fence(keys=[f"{self.prefix}live:fence"], args=[_clock_floor()]))
            watchdog = gevent.spawn(self._keep, name, value)
            yield token
        finally:
            if watchdog is not None:
                watchdog.kill(block=False)
            try:
                self._release(keys=[name], args=[value])
            except Exception:  # noqa: BLE001 - it expires by itself
                log.warning("live: could not release lock %s", key, exc_info=True)

    def _keep(self, name: str, value: str) -> None:
        while True:
            gevent.sleep(self.ttl_ms / 3000)
            try:
                if not self._renew(keys=[name], args=[value, self.ttl_ms]):
                    log.warning("live: lost lock %s (expired); writes will be fenced", name)
                    return
            except Exception:  # noqa: BLE001 - Redis away: the token still fences us
                log.warning("live: could not renew lock %s", name, exc_info=True)
