"""Structured logs: JSON lines on stdout, readable text on a terminal, request ids.

Every record carries ``request_id`` and ``user_id`` when there is one. The
request id comes from a valid ``X-Request-Id`` header or is generated; it is
``g.request_id`` in a request and :func:`current_request_id` anywhere (websocket
handlers and git subprocess code run outside Flask's request hooks: they wrap
their work in :func:`bound_request_id`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from flask import g, has_app_context, has_request_context

#: Accepted from clients and proxies: short, and nothing that could forge a log line.
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_request_id: ContextVar[str | None] = ContextVar("quire_request_id", default=None)

# Attributes every LogRecord has; anything else was passed with ``extra=``.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "user_id",
    "taskName",
}


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(value: str | None) -> str:
    """The client's id when it is short and safe, else a fresh one."""
    if value and REQUEST_ID_RE.fullmatch(value):
        return value
    return new_request_id()


#: Passed to subprocesses (git hooks) so that their logs carry the request's id.
REQUEST_ID_ENV = "QUIRE_REQUEST_ID"


def current_request_id() -> str | None:
    """The request id of the work in progress (request, websocket, background), if any.

    In a subprocess started with :func:`subprocess_env` it is the parent request's id.
    """
    if has_app_context():
        rid = g.get("request_id")
        if rid:
            return rid
    rid = _request_id.get()
    if rid:
        return rid
    inherited = os.environ.get(REQUEST_ID_ENV)
    return inherited if inherited and REQUEST_ID_RE.fullmatch(inherited) else None


def subprocess_env() -> dict[str, str]:
    """Environment entries that tie a subprocess's logs to the current request."""
    rid = current_request_id()
    return {REQUEST_ID_ENV: rid} if rid else {}


@contextmanager
def bound_request_id(request_id: str | None = None) -> Iterator[str]:
    """Tag logs (and Sentry events) of the enclosed work with ``request_id``."""
    rid = request_id or current_request_id() or new_request_id()
    token = _request_id.set(rid)
    try:
        yield rid
    finally:
        _request_id.reset(token)


def _current_user_id() -> int | None:
    if has_request_context():
        actor = g.get("actor")
        if actor is not None:
            return getattr(actor, "id", None)
    return None


class ContextFilter(logging.Filter):
    """Adds ``request_id`` and ``user_id`` to every record passing a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id()
        if getattr(record, "user_id", None) is None:
            try:
                record.user_id = _current_user_id()
            except Exception:  # noqa: BLE001 - a log line must never fail
                record.user_id = None
        return True


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {
        k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, ids, then any extras."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "user_id": getattr(record, "user_id", None),
        }
        for key, value in _extras(record).items():
            event.setdefault(key, value)
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            event["stack"] = self.formatStack(record.stack_info)
        return json.dumps(event, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``14:09:34.123 INFO  quire.request [ab12cd34] GET /login 200 3.1ms``."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        rid = getattr(record, "request_id", None)
        parts = [when, f"{record.levelname:<5}", record.name]
        if rid:
            parts.append(f"[{rid[:8]}]")
        parts.append(record.getMessage())
        extras = _extras(record)
        if extras:
            parts.append(" ".join(f"{k}={v}" for k, v in extras.items()))
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is at the time (test capture swaps it).

    Inside a command-line command (``flask --app app user create …``) stdout is the
    command's output, so log lines go to stderr there.
    """

    @property  # type: ignore[override]
    def stream(self):  # noqa: ANN201
        import click

        if click.get_current_context(silent=True) is not None:
            return sys.stderr
        return sys.stdout

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def formatter_for(fmt: str) -> logging.Formatter:
    if fmt == "auto":
        fmt = "text" if sys.stdout.isatty() else "json"
    return TextFormatter() if fmt == "text" else JsonFormatter()


def configure(level: str = "INFO", fmt: str = "auto") -> None:
    """Send the root logger's records to stdout in ``fmt``; idempotent."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_quire", False):
            root.removeHandler(handler)
    handler = StdoutHandler()
    handler._quire = True  # type: ignore[attr-defined]
    handler.setFormatter(formatter_for(fmt))
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
