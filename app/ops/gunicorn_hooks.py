"""gunicorn integration, used by ``deploy/gunicorn.conf.py``.

* :func:`use_multiprocess_dir` points ``PROMETHEUS_MULTIPROC_DIR`` at
  ``$QUIRE_VAR_DIR/prometheus`` unless the operator set it; it must run before a
  worker imports :mod:`prometheus_client`, i.e. when the config file loads.
* :func:`on_starting` empties it of the previous run's ``*.db`` files and
  :func:`child_exit` tells prometheus_client a worker is gone (live gauges).
* :class:`JsonAccessLogger` writes the access log as JSON lines (or gunicorn's
  usual format under ``LOG_FORMAT=text``), leaving out ``/up``, ``/ready`` and
  ``/metrics``; gunicorn's own error log follows ``LOG_FORMAT`` too.

Nothing here imports prometheus_client at module level, on purpose.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from gunicorn.glogging import Logger

QUIET_PATHS = frozenset({"/up", "/ready", "/metrics"})
PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


def use_multiprocess_dir() -> str:
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        var_dir = Path(os.environ.get("QUIRE_VAR_DIR") or PROJECT_ROOT / "var")
        path = str(var_dir / "prometheus")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


def on_starting(server) -> None:  # noqa: ANN001 - gunicorn's hook signature
    """Start from an empty metrics directory: a previous run's files would be summed in."""
    path = Path(use_multiprocess_dir())
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


def child_exit(server, worker) -> None:  # noqa: ANN001
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def _log_format() -> str:
    fmt = os.environ.get("LOG_FORMAT", "auto")
    if fmt == "auto":
        import sys

        fmt = "text" if sys.stdout.isatty() else "json"
    return fmt


class JsonAccessLogger(Logger):
    def setup(self, cfg) -> None:  # noqa: ANN001
        super().setup(cfg)
        self.json = _log_format() == "json"
        if self.json:
            from app.ops.logs import JsonFormatter

            for handler in self.error_log.handlers:
                handler.setFormatter(JsonFormatter())

    def access(self, resp, req, environ, request_time) -> None:  # noqa: ANN001
        if not self.access_log_enabled or req.path in QUIET_PATHS:
            return
        if not self.json:
            super().access(resp, req, environ, request_time)
            return
        try:
            status = resp.status_code if resp.status_code is not None else 0
            headers = {k.lower(): v for k, v in (resp.headers or [])}
            req_headers = {k.lower(): v for k, v in (req.headers or [])}
            event = {
                "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "level": "INFO",
                "logger": "gunicorn.access",
                "message": f"{req.method} {req.path} {status}",
                "request_id": headers.get("x-request-id"),
                "method": req.method,
                "path": req.path,
                "status": status,
                "bytes": getattr(resp, "sent", None),
                "duration_ms": round(request_time.total_seconds() * 1000, 2),
                "remote_addr": environ.get("REMOTE_ADDR"),
                "user_agent": req_headers.get("user-agent"),
                "pid": os.getpid(),
            }
            self.access_log.info(json.dumps(event, ensure_ascii=False))
        except Exception:  # noqa: BLE001 - a log line must never break a response
            self.exception("access log failed")
