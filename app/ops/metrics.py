"""Prometheus metrics: every metric Quire exports is defined here, once.

Other parts import what they increment (``from app.ops import metrics``;
``metrics.GIT_OPERATIONS.labels(operation="push", outcome="ok").inc()``).

Under gunicorn, ``PROMETHEUS_MULTIPROC_DIR`` is set before the workers import
this module (``deploy/gunicorn.conf.py``), so values live in per-process files
that :func:`render` aggregates with a fresh ``MultiProcessCollector`` per
scrape. Gauges therefore declare a ``multiprocess_mode``. Without the variable
(tests, ``flask run``) the default in-process registry is used.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

#: Seconds; 0.2 is the product's p95 target, so it is a bucket edge.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DB_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0)

# --- HTTP ---------------------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "quire_http_requests_total",
    "HTTP requests answered, by URL rule (not raw path), method and status.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "quire_http_request_duration_seconds",
    "Time to produce the response, by URL rule and method.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
HTTP_IN_PROGRESS = Gauge(
    "quire_http_requests_in_progress",
    "Requests being handled right now.",
    multiprocess_mode="livesum",
)

# --- database and Redis -------------------------------------------------------------------------
DB_QUERY_DURATION = Histogram(
    "quire_db_query_duration_seconds",
    "SQL statement execution time (cursor execute).",
    buckets=DB_BUCKETS,
)
DB_SLOW_QUERIES = Counter(
    "quire_db_slow_queries_total", "SQL statements slower than SLOW_QUERY_MS."
)
REDIS_ERRORS = Counter(
    "quire_redis_errors_total",
    "Failed Redis operations, by where they happened (ready, live, ratelimit, ...).",
    ["source"],
)

# --- process ------------------------------------------------------------------------------------
PROCESS_MEMORY = Gauge(
    "quire_process_resident_memory_bytes",
    "Resident memory of the live web processes, summed.",
    multiprocess_mode="livesum",
)

# --- live editing (incremented by app.live) -----------------------------------------------------
LIVE_ROOMS = Gauge("quire_live_rooms", "Open live-editing rooms.", multiprocess_mode="livesum")
LIVE_EDITORS = Gauge(
    "quire_live_connected_editors", "Connected editor websockets.", multiprocess_mode="livesum"
)
LIVE_JOURNAL_UNCOMMITTED = Gauge(
    "quire_live_journal_uncommitted_entries",
    "Journal entries (edits) not yet committed to Git.",
    multiprocess_mode="livesum",
)
LIVE_EDIT_TO_COMMIT = Histogram(
    "quire_live_edit_to_commit_seconds",
    "Time from the first uncommitted edit to the commit that contains it.",
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
)
LIVE_UPDATES_BROADCAST = Counter(
    "quire_live_updates_broadcast_total", "Update frames sent to connected editors."
)
LIVE_SLOW_CLIENT_DISCONNECTS = Counter(
    "quire_live_slow_client_disconnects_total",
    "Editors disconnected because they fell too far behind.",
)

# --- git over HTTP and merges (incremented by app.githttp, app.documents) ----------------------
GIT_OPERATIONS = Counter(
    "quire_git_operations_total",
    "Git smart-HTTP operations, by operation (clone, fetch, ls-refs, push) and outcome.",
    ["operation", "outcome"],
)
GIT_DURATION = Histogram(
    "quire_git_operation_duration_seconds",
    "Duration of git smart-HTTP operations.",
    ["operation"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
GIT_BYTES = Counter(
    "quire_git_bytes_total",
    "Bytes moved by git smart-HTTP, by operation and direction (in = from the client).",
    ["operation", "direction"],
)
MERGE_COMPUTATIONS = Counter(
    "quire_merge_computations_total",
    "Three-way merges computed on save, by outcome (clean, conflict).",
    ["outcome"],
)

# --- backups ------------------------------------------------------------------------------------
#: Exported by the backup job, not by the web processes (whose value would be meaningless):
#: it calls :func:`write_backup_textfile` into node_exporter's textfile directory.
BACKUP_LAST_SUCCESS_METRIC = "quire_backup_last_success_timestamp_seconds"


def write_backup_textfile(path: str | os.PathLike[str], timestamp: float | None = None) -> None:
    """Record a successful backup for node_exporter's textfile collector (atomic write)."""
    from prometheus_client import write_to_textfile

    registry = CollectorRegistry()
    gauge = Gauge(
        BACKUP_LAST_SUCCESS_METRIC, "Unix time of the last successful backup.", registry=registry
    )
    gauge.set(time.time() if timestamp is None else timestamp)
    write_to_textfile(str(path), registry)


_last_memory_update = 0.0


def update_process_metrics(force: bool = False) -> None:
    """Refresh this process's resident memory (at most every 5 s unless forced)."""
    global _last_memory_update
    now = time.monotonic()
    if not force and now - _last_memory_update < 5:
        return
    _last_memory_update = now
    rss = _resident_bytes()
    if rss is not None:
        PROCESS_MEMORY.set(rss)


def _resident_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        try:
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        except Exception:  # noqa: BLE001
            return None


class VolumeCollector(Collector):
    """Free and total bytes of the repositories volume, measured at scrape time."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def collect(self):  # noqa: ANN201
        path = self.root
        while not path.exists() and path != path.parent:
            path = path.parent  # not created yet: the volume it will be on
        try:
            usage = shutil.disk_usage(path)
        except OSError:
            return
        free = GaugeMetricFamily(
            "quire_repos_volume_free_bytes", "Free bytes on the repositories volume."
        )
        free.add_metric([], usage.free)
        size = GaugeMetricFamily(
            "quire_repos_volume_size_bytes", "Size in bytes of the repositories volume."
        )
        size.add_metric([], usage.total)
        yield free
        yield size


class ReadinessCollector(Collector):
    """The /ready checks, run at scrape time, as ``quire_ready`` and ``quire_ready_check``."""

    def __init__(self, checks) -> None:  # noqa: ANN001 - () -> {"name": {"ok": bool}}
        self.checks = checks

    def collect(self):  # noqa: ANN201
        results = self.checks()
        each = GaugeMetricFamily(
            "quire_ready_check", "1 when a readiness check passes, by check.", labels=["check"]
        )
        for name, result in results.items():
            each.add_metric([name], 1.0 if result.get("ok") else 0.0)
        overall = GaugeMetricFamily("quire_ready", "1 when every readiness check passes.")
        overall.add_metric([], 1.0 if all(r.get("ok") for r in results.values()) else 0.0)
        yield overall
        yield each


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render(repos_root: Path, readiness=None) -> tuple[bytes, str]:  # noqa: ANN001
    """The exposition text of every metric, aggregated over worker processes."""
    update_process_metrics(force=True)
    if multiprocess_dir():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    scrape_time = CollectorRegistry()
    scrape_time.register(VolumeCollector(repos_root))
    if readiness is not None:
        scrape_time.register(ReadinessCollector(readiness))
    return generate_latest(registry) + generate_latest(scrape_time), CONTENT_TYPE_LATEST
