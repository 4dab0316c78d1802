"""The app's own recent numbers for the admin System page, kept in process memory.

Choice (documented in docs/ARCHITECTURE.md): an in-process ring buffer of
per-minute, per-route aggregates (count, 5xx, total and max time, a latency
histogram for p95) over the last hour, and a bounded table of slow statements.
No SQL writes on the request path and no migration; the price is that each
worker sees only its own traffic and the numbers restart with the process.
Prometheus (``/metrics``) is the cross-worker, durable source; this page is the
"without Grafana" view.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from app.ops.metrics import LATENCY_BUCKETS

WINDOW_MINUTES = 60
MAX_SLOW_STATEMENTS = 200


@dataclass
class Agg:
    count: int = 0
    errors: int = 0
    total: float = 0.0
    max: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))

    def add(self, seconds: float, error: bool) -> None:
        self.count += 1
        self.errors += int(error)
        self.total += seconds
        self.max = max(self.max, seconds)
        for i, edge in enumerate(LATENCY_BUCKETS):
            if seconds <= edge:
                self.buckets[i] += 1
                return
        self.buckets[-1] += 1

    def merge(self, other: Agg) -> None:
        self.count += other.count
        self.errors += other.errors
        self.total += other.total
        self.max = max(self.max, other.max)
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]

    def quantile(self, q: float) -> float | None:
        """Like PromQL's histogram_quantile: linear inside the bucket that holds it."""
        if not self.count:
            return None
        rank = q * self.count
        seen = 0
        lower = 0.0
        for i, n in enumerate(self.buckets):
            upper = LATENCY_BUCKETS[i] if i < len(LATENCY_BUCKETS) else self.max
            if seen + n >= rank and n:
                return lower + (upper - lower) * (rank - seen) / n
            seen += n
            lower = upper
        return self.max


class RouteStats:
    """Per-minute aggregates by ``(method, route)`` for the last hour."""

    def __init__(self, clock=time.time) -> None:  # noqa: ANN001
        self.clock = clock
        self._lock = threading.Lock()
        self._minutes: dict[int, dict[tuple[str, str], Agg]] = {}

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        minute = int(self.clock() // 60)
        with self._lock:
            bucket = self._minutes.get(minute)
            if bucket is None:
                bucket = self._minutes[minute] = {}
                for old in [m for m in self._minutes if m <= minute - WINDOW_MINUTES]:
                    del self._minutes[old]
            agg = bucket.get((method, route))
            if agg is None:
                agg = bucket[(method, route)] = Agg()
            agg.add(seconds, status >= 500)

    def window(self, minutes: int = WINDOW_MINUTES) -> tuple[Agg, dict[tuple[str, str], Agg]]:
        now = int(self.clock() // 60)
        total = Agg()
        routes: dict[tuple[str, str], Agg] = {}
        with self._lock:
            for minute, bucket in self._minutes.items():
                if minute <= now - minutes:
                    continue
                for key, agg in bucket.items():
                    routes.setdefault(key, Agg()).merge(agg)
                    total.merge(agg)
        return total, routes

    def summary(self, minutes: int = WINDOW_MINUTES, top: int = 10) -> dict[str, object]:
        total, routes = self.window(minutes)
        slowest = sorted(routes.items(), key=lambda kv: kv[1].quantile(0.95) or 0, reverse=True)
        return {
            "minutes": minutes,
            "requests": total.count,
            "rate_per_second": total.count / (minutes * 60),
            "error_rate": (total.errors / total.count) if total.count else 0.0,
            "p95_ms": _ms(total.quantile(0.95)),
            "routes": [
                {
                    "method": method,
                    "route": route,
                    "count": agg.count,
                    "errors": agg.errors,
                    "avg_ms": _ms(agg.total / agg.count),
                    "p95_ms": _ms(agg.quantile(0.95)),
                    "max_ms": _ms(agg.max),
                }
                for (method, route), agg in slowest[:top]
            ],
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


@dataclass
class SlowStatement:
    statement: str
    calls: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0
    last_at: float = 0.0


class SlowQueries:
    """Statements over the threshold, keyed by their text (parameters are never kept)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_text: dict[str, SlowStatement] = {}

    def record(self, statement: str, ms: float) -> None:
        key = " ".join(statement.split())[:2000]
        with self._lock:
            entry = self._by_text.get(key)
            if entry is None:
                if len(self._by_text) >= MAX_SLOW_STATEMENTS:
                    oldest = min(self._by_text.values(), key=lambda e: e.last_at)
                    del self._by_text[oldest.statement]
                entry = self._by_text[key] = SlowStatement(key)
            entry.calls += 1
            entry.total_ms += ms
            entry.max_ms = max(entry.max_ms, ms)
            entry.last_at = time.time()

    def slowest(self, top: int = 15) -> list[dict[str, object]]:
        with self._lock:
            entries = sorted(self._by_text.values(), key=lambda e: e.max_ms, reverse=True)
        return [
            {
                "query": e.statement,
                "calls": e.calls,
                "mean_ms": round(e.total_ms / e.calls, 1),
                "max_ms": round(e.max_ms, 1),
                "total_ms": round(e.total_ms, 1),
            }
            for e in entries[:top]
        ]
