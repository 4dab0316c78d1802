"""Every query the main pages run uses an index on PostgreSQL: no sequential scan of a large table.

The tables are filled with enough rows that the planner prefers an index whenever
one fits (and ANALYZEd), the pages are requested as an anonymous visitor, a
member, an owner and an admin, every SELECT they ran is captured with its
parameters and EXPLAINed, and any ``Seq Scan`` of a large table fails the test.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import event, select, text

from app.documents.models import Membership
from app.documents.services import create_document

LARGE = ("users", "documents", "memberships", "tokens", "activity_events", "status_checks")
N_USERS = 20_000
N_DOCUMENTS = 50_000


def fill(engine) -> None:  # noqa: ANN001
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (username, email, display_name, password_hash, is_admin,"
                " is_active, created_at) SELECT 'filler' || i, 'filler' || i || '@example.com',"
                " '', 'x', false, true, now() FROM generate_series(1, :n) AS i"
            ),
            {"n": N_USERS},
        )
        # Mostly private documents of other people; 1 % public.
        conn.execute(
            text(
                "INSERT INTO documents (repo_id, slug, title, owner_id, visibility,"
                " default_branch, created_at, updated_at)"
                " SELECT md5('doc' || i), 'filler-' || i, 'Filler ' || i,"
                " (SELECT min(id) FROM users WHERE username LIKE 'filler%') + (i % :users),"
                " CASE WHEN i % 100 = 0 THEN 'public' ELSE 'private' END, 'main',"
                " now() - (i || ' minutes')::interval, now() - (i || ' minutes')::interval"
                " FROM generate_series(1, :n) AS i"
            ),
            {"n": N_DOCUMENTS, "users": N_USERS},
        )
        conn.execute(
            text(
                "INSERT INTO memberships (document_id, user_id, role, created_at)"
                " SELECT d.id, d.owner_id + 1, 'reader', now() FROM documents d"
                " WHERE d.slug LIKE 'filler-%' AND d.owner_id + 1 <= (SELECT max(id) FROM users)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO tokens (user_id, name, prefix, token_hash, created_at)"
                " SELECT id, 'filler', 'qt_f', md5('t' || id) || md5('u' || id), now() FROM users"
                " WHERE username LIKE 'filler%'"
            )
        )
        conn.execute(
            text(
                "INSERT INTO status_checks (component, day, ok, checked_at)"
                " SELECT (ARRAY['web','database','redis','git','live','background'])[1 + i % 6],"
                " (now() - ((i / 600) || ' days')::interval)::date - 100, true, now()"
                " FROM generate_series(1, 60000) AS i"
            )
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))


def seq_scans(plan: dict, parent: dict | None = None) -> list[str]:
    """Large tables read by a Seq Scan, except an unfiltered count of a whole table
    (an admin's list of every document counts them all, whatever the indexes)."""
    found = []
    if plan.get("Node Type") == "Seq Scan" and plan.get("Relation Name") in LARGE:
        whole_count = "Filter" not in plan and (parent or {}).get("Node Type") == "Aggregate"
        if not whole_count:
            found.append(plan["Relation Name"])
    for child in plan.get("Plans", []):
        found.extend(seq_scans(child, plan))
    return found


def test_main_pages_use_indexes(app, backend, accounts, client):
    if backend != "postgresql":
        pytest.skip("query plans are checked on PostgreSQL, the production database")
    engine = app.extensions["quire.db"].engine
    owner = accounts.create("owner")
    accounts.create("member")
    accounts.create("root", admin=True)
    with app.app_context():
        from app import db
        from app.accounts.models import User

        actor = db.session().get(User, owner.id)
        doc = create_document(actor, "Quarterly report", visibility="private")
        create_document(actor, "Open notes", visibility="public")
        member = db.session().scalar(select(User).where(User.username == "member"))
        db.session().add(Membership(document_id=doc.id, user_id=member.id, role="editor"))
        db.session().commit()
    fill(engine)

    statements: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    token = accounts.token("owner")
    try:
        anonymous = app.test_client()
        for url in ("/", "/documents", "/documents?sort=title", "/status", "/d/open-notes"):
            assert anonymous.get(url).status_code == 200, url
        for user in ("owner", "member", "root"):
            browser = app.test_client()
            accounts.login(browser, user)
            for url in (
                "/",
                "/documents",
                "/documents?scope=mine",
                "/documents?scope=shared",
                "/documents?scope=public",
                "/documents?sort=created",
                "/documents?page=2",
                "/d/quarterly-report",
                "/d/quarterly-report/history",
                "/settings/tokens",
                "/status",
            ):
                response = browser.get(url)
                assert response.status_code in (200, 404), (user, url, response.status_code)
        api = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        for url in ("/api/v1/user", "/api/v1/documents", "/api/v1/documents/quarterly-report"):
            assert api.get(url, headers=headers).status_code == 200, url
    finally:
        event.remove(engine, "before_cursor_execute", capture)

    assert len(statements) > 50
    problems: dict[str, list[str]] = {}
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for statement, parameters in statements:
            cursor.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
            plan = cursor.fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            scans = seq_scans(plan[0]["Plan"])
            flat = " ".join(statement.split())
            if scans:
                problems.setdefault(flat[:400], scans)
        raw.rollback()
    finally:
        raw.close()
    assert not problems, "sequential scans:\n" + "\n".join(
        f"{sorted(set(v))}: {k}" for k, v in problems.items()
    )
