"""Error and trace reporting to Sentry, when ``SENTRY_DSN`` is set.

Only the user id is sent (no email; no IP address unless ``SENTRY_SEND_PII``),
with the request id as a tag. :func:`scrub` runs on every event and
transaction: personal access tokens (``qt_…``), passwords, secrets, cookies,
``Authorization`` headers and request bodies (which hold document text on
saves) never leave the process. Local variables of stack frames are not
collected for the same reason.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, g

from app.ops.settings import OpsSettings

FILTERED = "[Filtered]"
TOKEN_RE = re.compile(r"qt_[A-Za-z0-9_\-]{8,}")
SENSITIVE_KEY_RE = re.compile(
    r"pass(word|wd)?|secret|token|authorization|cookie|session|csrf|api[_-]?key|credential|"
    r"^content$|^text$|^body$",
    re.IGNORECASE,
)
SENSITIVE_HEADERS = {"authorization", "cookie", "set-cookie", "proxy-authorization", "x-csrftoken"}


def _scrub_value(value: Any, depth: int = 0) -> Any:
    if depth > 20:
        return FILTERED
    if isinstance(value, str):
        return TOKEN_RE.sub(FILTERED, value)
    if isinstance(value, dict):
        return {
            k: FILTERED
            if isinstance(k, str) and SENSITIVE_KEY_RE.search(k)
            else _scrub_value(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        # Sentry sends headers as [[name, value], ...] pairs in places.
        if len(value) == 2 and isinstance(value[0], str) and value[0].lower() in SENSITIVE_HEADERS:
            return [value[0], FILTERED]
        return [_scrub_value(v, depth + 1) for v in value]
    return value


def scrub(event: dict[str, Any], hint: Any = None) -> dict[str, Any]:
    """``before_send`` and ``before_send_transaction``: remove what must not leave."""
    req = event.get("request")
    if isinstance(req, dict):
        req.pop("data", None)  # bodies: document text, passwords, tokens
        req.pop("cookies", None)
        headers = req.get("headers")
        if isinstance(headers, dict):
            req["headers"] = {
                k: (FILTERED if k.lower() in SENSITIVE_HEADERS else v) for k, v in headers.items()
            }
        if isinstance(req.get("query_string"), str):
            req["query_string"] = TOKEN_RE.sub(FILTERED, req["query_string"])
    user = event.get("user")
    if isinstance(user, dict):
        event["user"] = {k: v for k, v in user.items() if k in ("id", "ip_address")}
    return _scrub_value(event)


def init_app(app: Flask, settings: OpsSettings) -> bool:
    if not settings.sentry_dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration, ignore_logger

    # 5xx access lines are logged at ERROR; the exception itself is the Sentry event.
    ignore_logger("quire.request")

    pii = settings.sentry_send_pii
    ip_terms = [] if pii else ["forwarded", "-ip", "remote-", "via", "-user"]
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        release=settings.release or None,
        environment=settings.environment,
        traces_sample_rate=settings.sentry_traces_sample_rate,
        data_collection={
            "user_info": pii,  # the IP address and the like; the user id is set below
            "cookies": {"mode": "off"},
            "http_headers": {"request": {"mode": "denylist", "terms": ip_terms}},
            "http_bodies": [],  # document text, passwords
            "url_query_params": {"mode": "denylist", "terms": ip_terms},
            "database_query_data": False,
            "stack_frame_variables": False,
        },
        before_send=scrub,
        before_send_transaction=scrub,
        integrations=[FlaskIntegration(), LoggingIntegration()],
    )

    def _user() -> None:
        # Registered after app.auth.current's load_actor, so g.actor is known.
        actor = g.get("actor")
        if actor is not None:
            sentry_sdk.set_user({"id": str(actor.id)})

    app.before_request(_user)
    return True
