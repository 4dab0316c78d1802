"""Room locks and fencing (issue 4, "Exactly one process commits a given room at a time")."""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import create_engine

from app.live.journal import Journal, Snapshot, StaleFence
from app.live.locks import LocalLocks, LockTimeout, RedisLocks


def test_local_lock_tokens_grow_and_start_from_the_clock() -> None:
    locks = LocalLocks()
    with locks.hold("commit:r") as first:
        pass
    with locks.hold("commit:r") as second:
        pass
    assert second > first >= (time.time_ns() // 1000) - 60_000_000


@pytest.fixture
def redis_locks(redis_url: str):
    import redis

    client = redis.Redis.from_url(redis_url)
    prefix = f"quire-test-{uuid.uuid4().hex[:8]}:"
    yield lambda **kw: RedisLocks(client, prefix=prefix, **kw)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)


def test_redis_lock_is_exclusive_and_fenced(redis_locks, sqlite_url: str) -> None:
    one, two = redis_locks(), redis_locks(wait_seconds=5)
    journal = Journal(create_engine(sqlite_url))
    room = f"9:main:{uuid.uuid4().hex}.md"
    journal.create_snapshot(room, Snapshot(b"\x00\x00", "a" * 40, 0))

    impatient = redis_locks(wait_seconds=0.3)
    with one.hold(f"commit:{room}") as old_token:
        with pytest.raises(LockTimeout), impatient.hold(f"commit:{room}"):
            pass  # pragma: no cover
        # The holder pauses (a stopped process cannot renew) and its lock expires...
        one.client.pexpire(f"{one.prefix}live:lock:commit:{room}", 1)
        time.sleep(0.05)
        # ...so another process takes it, with a larger token, and writes.
        with two.hold(f"commit:{room}") as new_token:
            assert new_token > old_token
            journal.save_snapshot(room, Snapshot(b"\x00\x00", "b" * 40, 1), fence=new_token)
        # The stale holder wakes up: its writes are refused.
        with pytest.raises(StaleFence):
            journal.check_fence(room, old_token)
        with pytest.raises(StaleFence):
            journal.save_snapshot(room, Snapshot(b"\x00\x00", "c" * 40, 2), fence=old_token)
    snapshot = journal.snapshot(room)
    assert snapshot is not None and snapshot.base_commit == "b" * 40
    assert snapshot.fence == new_token
