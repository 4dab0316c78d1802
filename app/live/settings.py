"""Live-editing settings, read from the environment (12-factor) with working defaults.

They live here rather than in :mod:`app.config` so that the live layer owns its own
knobs; ``app.config`` may override any of them (tests do).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class LiveSettings:
    #: Commit after this long without edits (Hocuspocus' debounce).
    commit_quiet_seconds: float = 2.0
    #: ...and at the latest this long after the first uncommitted edit.
    commit_max_seconds: float = 10.0
    #: A room's incoming updates are merged over this window and sent as one frame.
    broadcast_window_seconds: float = 0.03
    #: Largest websocket message accepted (close 1009 above it).
    max_message_bytes: int = 1024 * 1024
    #: Sustained document updates per second per connection (close 4429 above it).
    max_updates_per_second: float = 50.0
    #: Burst allowance for the rate above.
    update_burst: int = 200
    max_connections_per_room: int = 1000
    max_rooms_per_worker: int = 500
    #: Frames waiting for one client; a client further behind is disconnected.
    send_queue_frames: int = 256
    #: How often clock-only awareness renewals are forwarded to the room.
    awareness_renew_seconds: float = 10.0
    #: How often an idle room checks whether its branch moved (form save, push).
    head_poll_seconds: float = 1.0
    #: With REDIS_URL: prefix of the live keys and pub/sub channels (several sites, tests).
    redis_prefix: str = "quire:"
    #: With REDIS_URL: a commit lock whose holder stopped renewing it expires after this.
    lock_ttl_seconds: float = 10.0

    @classmethod
    def load(cls, config: Mapping[str, Any], env: Mapping[str, str] | None = None) -> LiveSettings:
        """``app.config['LIVE_…']`` wins, then the environment, then the default."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = "LIVE_" + f.name.upper()
            raw = config.get(key, env.get(key))
            if raw is None or raw == "":
                continue
            kind = type(f.default)
            try:
                values[f.name] = kind(raw)
            except ValueError as exc:
                raise ValueError(f"{key} must be a {kind.__name__}, got {raw!r}") from exc
        return cls(**values)
