"""Structured logs and request ids."""

from __future__ import annotations

import json
import logging

from app import create_app
from app.ops import bound_request_id, current_request_id
from app.ops.logs import JsonFormatter, TextFormatter


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_request_id_from_header_or_generated(app):
    client = app.test_client()
    response = client.get("/login", headers={"X-Request-Id": "edge-7f3a.42:1"})
    assert response.headers["X-Request-Id"] == "edge-7f3a.42:1"
    for bad in ("x" * 65, "has space", 'quote"s', "semi;colon", ""):
        rid = client.get("/login", headers={"X-Request-Id": bad}).headers["X-Request-Id"]
        assert rid != bad and len(rid) == 32
    a = client.get("/up").headers["X-Request-Id"]
    b = client.get("/up").headers["X-Request-Id"]
    assert a != b


def test_json_access_line_with_user_and_request_id(app, client, accounts, capsys):
    application = create_app({**app.config, "LOG_FORMAT": "json"})
    application.test_client_class = type(client)
    browser = application.test_client()
    user = accounts.create("alice")
    accounts.login(browser, "alice")
    capsys.readouterr()
    browser.get("/documents", headers={"X-Request-Id": "req-1"})
    browser.get("/up")
    browser.get("/ready")
    lines = json_lines(capsys.readouterr().out)
    access = [e for e in lines if e["logger"] == "quire.request"]
    assert len(access) == 1, lines  # probes are left out
    event = access[0]
    assert event["request_id"] == "req-1"
    assert event["user_id"] == user.id
    assert event["method"] == "GET" and event["path"] == "/documents"
    assert event["status"] == 200 and event["duration_ms"] >= 0
    assert event["level"] == "INFO" and event["time"].endswith("Z")
    assert event["message"] == "GET /documents 200"


def test_text_format_for_people(app, capsys):
    application = create_app({**app.config, "LOG_FORMAT": "text"})
    application.test_client().get("/login")
    out = capsys.readouterr().out
    line = [x for x in out.splitlines() if "quire.request" in x][-1]
    assert "GET /login 200" in line and not line.startswith("{")


def test_request_id_outside_requests():
    assert current_request_id() is None
    with bound_request_id("ws-123") as rid:
        assert rid == "ws-123" and current_request_id() == "ws-123"
        record = logging.LogRecord("quire.live", logging.INFO, "", 0, "hello %s", ("x",), None)
        from app.ops.logs import ContextFilter

        ContextFilter().filter(record)
        event = json.loads(JsonFormatter().format(record))
        assert event["request_id"] == "ws-123" and event["message"] == "hello x"
        assert "[ws-123]" in TextFormatter().format(record)
    assert current_request_id() is None


def test_request_id_reaches_subprocesses(app):
    import subprocess
    import sys

    from app.ops import subprocess_env

    assert subprocess_env() == {}
    with bound_request_id("push-42"):
        env = {**subprocess_env(), "PYTHONPATH": str(app.root_path.rsplit("/app", 1)[0])}
    code = "from app.ops import current_request_id; print(current_request_id())"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "push-42"
