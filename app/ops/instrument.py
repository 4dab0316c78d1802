"""Request and database instrumentation: request ids, access lines, metrics, slow queries."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from flask import Flask, Response, g, request
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.ops import metrics
from app.ops.logs import accept_request_id
from app.ops.settings import OpsSettings
from app.ops.stats import RouteStats, SlowQueries

#: Probes and scrapes: no access line, no request metrics, no route stats.
QUIET_PATHS = frozenset({"/up", "/ready", "/metrics"})

request_log = logging.getLogger("quire.request")
slow_log = logging.getLogger("quire.db.slow")


@dataclass
class OpsState:
    settings: OpsSettings
    routes: RouteStats = field(default_factory=RouteStats)
    slow_queries: SlowQueries = field(default_factory=SlowQueries)
    started_at: float = field(default_factory=time.time)
    #: /status: (monotonic time, results) of the last checks, and when each component was recorded.
    status_cache: tuple[float, dict] | None = None
    status_recorded_at: dict[str, float] = field(default_factory=dict)


def get_state(app: Flask) -> OpsState:
    return app.extensions["quire.ops"]


def route_label() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else "<unmatched>"


def _start() -> None:
    g.request_id = accept_request_id(request.headers.get("X-Request-Id"))
    g._quire_t0 = time.perf_counter()
    # A websocket's "request" lasts as long as the editing session: it is logged when it
    # ends but kept out of the request metrics (the live metrics describe websockets).
    g._quire_websocket = request.headers.get("Upgrade", "").lower() == "websocket"
    if request.path not in QUIET_PATHS and not g._quire_websocket:
        metrics.HTTP_IN_PROGRESS.inc()
        g._quire_inflight = True
    try:
        import sentry_sdk

        sentry_sdk.set_tag("request_id", g.request_id)
    except Exception:  # noqa: BLE001 - telemetry never breaks a request
        pass


def _record(state: OpsState, status: int) -> None:
    if g.get("_quire_recorded") or request.path in QUIET_PATHS or "_quire_t0" not in g:
        return
    g._quire_recorded = True
    seconds = time.perf_counter() - g._quire_t0
    route = route_label()
    method = request.method
    if not g.get("_quire_websocket"):
        metrics.HTTP_REQUESTS.labels(route=route, method=method, status=str(status)).inc()
        metrics.HTTP_DURATION.labels(route=route, method=method).observe(seconds)
        state.routes.record(method, route, status, seconds)
    metrics.update_process_metrics()
    level = logging.ERROR if status >= 500 else logging.INFO
    request_log.log(
        level,
        "%s %s %s",
        method,
        request.path,
        status,
        extra={
            "method": method,
            "path": request.path,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
        },
    )


def init_app(app: Flask, state: OpsState) -> None:
    def finish(response: Response) -> Response:
        rid = g.get("request_id")
        if rid:
            response.headers["X-Request-Id"] = rid
        _record(state, response.status_code)
        return response

    def teardown(exc: BaseException | None) -> None:
        if exc is not None:
            _record(state, 500)
        if g.pop("_quire_inflight", False):
            metrics.HTTP_IN_PROGRESS.dec()

    # First of all hooks: the id and the clock exist before anything can fail.
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(finish)
    app.teardown_request(teardown)
    instrument_engine(app.extensions["quire.db"].engine, state)


def instrument_engine(engine: Engine, state: OpsState) -> None:
    """Time every statement; log and count the ones over ``SLOW_QUERY_MS``."""
    threshold_ms = state.settings.slow_query_ms

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        conn.info.setdefault("quire_query_t0", []).append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        _done(conn, statement)

    @event.listens_for(engine, "handle_error")
    def _error(context):  # noqa: ANN001
        conn = context.connection
        if conn is not None and context.statement is not None:
            _done(conn, context.statement)

    def _done(conn, statement: str) -> None:  # noqa: ANN001
        stack = conn.info.get("quire_query_t0")
        if not stack:
            return
        seconds = time.perf_counter() - stack.pop()
        metrics.DB_QUERY_DURATION.observe(seconds)
        ms = seconds * 1000
        if ms >= threshold_ms:
            metrics.DB_SLOW_QUERIES.inc()
            state.slow_queries.record(statement, ms)
            # Parameters are never logged: they can hold tokens, emails or document text.
            slow_log.warning(
                "slow query (%.0f ms)",
                ms,
                extra={
                    "duration_ms": round(ms, 2),
                    "statement": " ".join(statement.split())[:1000],
                },
            )
