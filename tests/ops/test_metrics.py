"""/metrics in one process: access control, labels, database timing, slow queries."""

from __future__ import annotations

import re

from flask import Flask
from sqlalchemy import text

from app import create_app, db


def sample(body: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in body.splitlines():
        match = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(match.group(3))
    return total


def test_metrics_only_for_allowed_networks_or_the_token(app):
    app.config["METRICS_TOKEN"] = "s3cret-scrape-token"
    application = create_app(dict(app.config))
    client = application.test_client()
    assert client.get("/metrics").status_code == 200  # 127.0.0.1 by default
    outside = {"REMOTE_ADDR": "203.0.113.9"}
    assert client.get("/metrics", environ_base=outside).status_code == 404
    wrong = {"Authorization": "Bearer nope"}
    assert client.get("/metrics", environ_base=outside, headers=wrong).status_code == 404
    right = {"Authorization": "Bearer s3cret-scrape-token"}
    response = client.get("/metrics", environ_base=outside, headers=right)
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")


def test_configured_networks_replace_the_default(app):
    application = create_app({**app.config, "METRICS_ALLOWED_NETWORKS": "10.0.0.0/8"})
    client = application.test_client()
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.2.3.4"}).status_code == 200


def test_requests_counted_by_rule_not_raw_path(app: Flask):
    client = app.test_client()
    before = client.get("/metrics").get_data(as_text=True)
    for slug in ("alpha", "beta", "gamma"):
        client.get(f"/d/{slug}")
    client.get("/up")
    client.get("/ready")
    after = client.get("/metrics").get_data(as_text=True)
    labels = {"route": "/d/<slug>", "method": "GET", "status": "404"}
    assert (
        sample(after, "quire_http_requests_total", **labels)
        - sample(before, "quire_http_requests_total", **labels)
        == 3
    )
    assert "alpha" not in after
    assert 'route="/up"' not in after and 'route="/metrics"' not in after
    assert sample(after, "quire_http_request_duration_seconds_count", route="/d/<slug>") >= 3
    assert "quire_http_requests_in_progress" in after
    assert sample(after, "quire_db_query_duration_seconds_count") > 0
    assert sample(after, "quire_repos_volume_free_bytes") > 0
    assert sample(after, "quire_process_resident_memory_bytes") > 1_000_000
    for name in (
        "quire_live_rooms",
        "quire_live_connected_editors",
        "quire_live_journal_uncommitted_entries",
        "quire_live_edit_to_commit_seconds",
        "quire_live_updates_broadcast_total",
        "quire_live_slow_client_disconnects_total",
        "quire_git_operations_total",
        "quire_git_operation_duration_seconds",
        "quire_git_bytes_total",
        "quire_merge_computations_total",
        "quire_redis_errors_total",
        "quire_db_slow_queries_total",
    ):
        assert f"# TYPE {name} " in after, name


def test_slow_queries_logged_counted_and_listed(app: Flask, accounts, client, capsys):
    application = create_app({**app.config, "SLOW_QUERY_MS": "20", "LOG_FORMAT": "json"})
    before = sample(
        application.test_client().get("/metrics").get_data(as_text=True),
        "quire_db_slow_queries_total",
    )
    sleep = (
        "SELECT pg_sleep(0.08)"
        if application.extensions["quire.db"].engine.dialect.name == "postgresql"
        else "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000)"
        " SELECT count(*) FROM c"
    )
    with application.app_context():
        db.session().execute(text(sleep))
        db.session().rollback()
    out = capsys.readouterr().out
    assert "slow query" in out and '"duration_ms"' in out
    after = sample(
        application.test_client().get("/metrics").get_data(as_text=True),
        "quire_db_slow_queries_total",
    )
    assert after - before >= 1
    accounts.create("root", admin=True)
    accounts.create("pleb")
    application.test_client_class = type(client)
    browser = application.test_client()
    accounts.login(browser, "pleb")
    assert browser.get("/admin/system").status_code == 404
    browser.get("/logout")
    admin = application.test_client()
    accounts.login(admin, "root")
    admin.get("/d/nothing-here")
    page = admin.get("/admin/system")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Slowest routes" in html and "/d/&lt;slug&gt;" in html
    assert "Slowest statements" in html
    assert "p95" in html and "Repositories disk" in html
    if application.extensions["quire.db"].engine.dialect.name == "sqlite":
        assert "WITH RECURSIVE" in html


def test_admin_page_hidden_from_anonymous(app):
    assert app.test_client().get("/admin/system").status_code == 404


def test_websocket_sessions_stay_out_of_request_metrics(app):
    client = app.test_client()
    labels = {"route": "/login", "method": "GET"}
    before = sample(
        client.get("/metrics").get_data(as_text=True), "quire_http_requests_total", **labels
    )
    client.get("/login", headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    client.get("/login")
    after = sample(
        client.get("/metrics").get_data(as_text=True), "quire_http_requests_total", **labels
    )
    assert after - before == 1
