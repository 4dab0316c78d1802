"""Sentry: a local envelope sink receives the error and the transaction, scrubbed."""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sentry_sdk

from app import create_app

TOKEN = "qt_" + "S3cr3tT0kenValue" * 3
PASSWORD = "hunter2-correct-horse"
COOKIE = "session=cookie-value-that-must-not-leak"
DOC_TEXT = "Confidential paragraph of the document body"


class Sink:
    """A ~30-line Sentry: stores every envelope posted to /api/<project>/envelope/."""

    def __init__(self) -> None:
        self.envelopes: list[bytes] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                elif encoding == "br":
                    import brotli

                    body = brotli.decompress(body)
                sink.envelopes.append(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def items(self) -> list[tuple[dict, dict | bytes]]:
        """(item header, payload) of every envelope item."""
        out = []
        for envelope in self.envelopes:
            lines = envelope.split(b"\n")
            i = 1  # line 0 is the envelope header
            while i < len(lines) and lines[i]:
                header = json.loads(lines[i])
                payload = lines[i + 1]
                try:
                    out.append((header, json.loads(payload)))
                except ValueError:
                    out.append((header, payload))
                i += 2
        return out


@pytest.fixture
def sink():
    s = Sink()
    yield s
    s.server.shutdown()


def test_errors_and_traces_reach_sentry_scrubbed(app, sink, accounts):
    dsn = f"http://publickey@127.0.0.1:{sink.port}/1"
    try:
        application = create_app(
            {
                **app.config,
                "SENTRY_DSN": dsn,
                "SENTRY_TRACES_SAMPLE_RATE": "1.0",
                "QUIRE_RELEASE": "quire@abc123def",
                "QUIRE_ENV": "staging",
            }
        )

        @application.post("/_test/boom")
        def boom():
            raise RuntimeError("kaboom for the sink test")

        application.extensions["csrf"].exempt(boom)
        application.config["PROPAGATE_EXCEPTIONS"] = False
        user = accounts.create("erin")
        client = application.test_client()
        client.set_cookie("session", "cookie-value-that-must-not-leak")
        response = client.post(
            "/_test/boom?access_token=" + TOKEN,
            data={"password": PASSWORD, "content": DOC_TEXT, "note": f"token {TOKEN}"},
            headers={
                "Authorization": f"Bearer {TOKEN}",
                "X-Request-Id": "sentry-req-1",
                "Cookie": COOKIE,
            },
        )
        assert response.status_code == 500
        assert client.get("/login").status_code == 200
        sentry_sdk.flush(timeout=10)
    finally:
        sentry_sdk.get_client().close(timeout=5)
        sentry_sdk.init()  # back to a client that sends nothing

    raw = b"".join(sink.envelopes)
    items = sink.items()
    events = [p for h, p in items if h.get("type") == "event"]
    transactions = [p for h, p in items if h.get("type") == "transaction"]
    assert events, f"no event arrived: {[h for h, _ in items]}"
    event = events[0]
    exc = event["exception"]["values"][-1]
    assert exc["type"] == "RuntimeError" and "kaboom" in exc["value"]
    assert event["release"] == "quire@abc123def"
    assert event["environment"] == "staging"
    assert event["tags"]["request_id"] == "sentry-req-1"
    names = {t["transaction"] for t in transactions}
    assert any("login" in name for name in names), names
    assert all(t["release"] == "quire@abc123def" for t in transactions)
    # The request was described (so the checks below are not vacuous), its secrets filtered.
    headers = event["request"]["headers"]
    assert headers["Authorization"] == "[Filtered]"
    assert headers.get("Cookie") in (None, "[Filtered]")
    assert "data" not in event["request"]
    for secret in (TOKEN, PASSWORD, "cookie-value-that-must-not-leak", DOC_TEXT, "erin@"):
        assert secret.encode() not in raw, f"{secret!r} leaked to Sentry"
    assert user.id  # the user exists; the events above were anonymous


def test_user_id_only(app, sink, accounts, client):
    dsn = f"http://publickey@127.0.0.1:{sink.port}/1"
    try:
        application = create_app(
            {**app.config, "SENTRY_DSN": dsn, "SENTRY_TRACES_SAMPLE_RATE": "0"}
        )

        @application.get("/_test/boom")
        def boom():
            raise RuntimeError("signed-in failure")

        application.config["PROPAGATE_EXCEPTIONS"] = False
        user = accounts.create("frank")
        application.test_client_class = type(client)
        browser = application.test_client()
        accounts.login(browser, "frank")
        assert browser.get("/_test/boom").status_code == 500
        sentry_sdk.flush(timeout=10)
    finally:
        sentry_sdk.get_client().close(timeout=5)
        sentry_sdk.init()
    events = [p for h, p in sink.items() if h.get("type") == "event"]
    assert events
    assert events[-1]["user"] == {"id": str(user.id)}
    raw = b"".join(sink.envelopes)
    assert b"frank@example.com" not in raw and b"127.0.0.1" not in raw.replace(
        f"127.0.0.1:{sink.port}".encode(), b""
    )
