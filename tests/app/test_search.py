"""Full-text search (issue 9, first slice), on SQLite FTS5 and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select, text

from app import db
from app.accounts.models import User
from app.documents import services
from app.search import query as syntax
from app.search.index import reindex_all, search


def _user(username: str) -> User:
    return db.session().scalar(select(User).where(User.username == username))


def make(app, owner: str, title: str, body: str, *, visibility: str = "public") -> str:
    """A document whose document.md holds ``body``, saved through the service (signal)."""
    with app.app_context():
        user = _user(owner)
        document = services.create_document(user, title, visibility=visibility)
        parent = services.repo(document).head("main")
        services.save_file(
            user,
            document,
            branch="main",
            path="document.md",
            content=body,
            message="Write",
            parent=parent,
        )
        return document.slug


def titles(app, q: str, username: str | None = None) -> list[str]:
    with app.app_context():
        actor = _user(username) if username else None
        return [hit.document.title for hit in search(actor, q, 20, None).hits]


def test_query_translation():
    clauses = syntax.parse('alpha "exact words" colla* -draft')
    assert syntax.to_fts5(clauses) == '("alpha" AND "exact words" AND "colla"*) NOT "draft"'
    assert syntax.to_tsquery(clauses) == (
        "('alpha') & ('exact' <-> 'words') & ('colla':*) & !('draft')"
    )
    assert syntax.to_fts5(syntax.parse("-only")) is None
    assert syntax.to_tsquery(syntax.parse("'); drop table x; --")) == (
        "('drop') & ('table') & ('x')"
    )


def test_title_ranks_above_body(app, accounts):
    accounts.create("ann")
    make(app, "ann", "Notes", "Gardening tips: the heliotrope needs sun.\n")
    make(app, "ann", "Heliotrope", "A plant.\n")
    assert titles(app, "heliotrope") == ["Heliotrope", "Notes"]


def test_phrase_prefix_exclusion(app, accounts):
    accounts.create("ann")
    make(app, "ann", "One", "the quick brown fox jumps\n")
    make(app, "ann", "Two", "brown quick fox, a draft about collaboration\n")
    assert titles(app, '"quick brown"') == ["One"]
    assert sorted(titles(app, "quick brown")) == ["One", "Two"]
    assert titles(app, "colla*") == ["Two"]
    assert titles(app, "fox -draft") == ["One"]
    assert titles(app, "-draft") == []


def test_snippet_highlights_and_escapes(app, accounts, client):
    accounts.create("ann")
    make(app, "ann", "Markup", "<script>alert(1)</script> the zeppelin flies\n")
    with app.app_context():
        (hit,) = search(None, "zeppelin", 10, None).hits
    snippet = str(hit.snippet)
    assert "<mark>zeppelin</mark>" in snippet
    # Only the marks are markup: SQLite keeps the tag text (escaped), ts_headline drops tags.
    assert "<script>" not in snippet and "alert(1)" in snippet
    html = client.get("/search?q=zeppelin").get_data(as_text=True)
    assert "<mark>zeppelin</mark>" in html and "<script>alert" not in html


def test_private_document_never_leaks(app, accounts, client):
    accounts.create("ann")
    accounts.create("bob")
    make(app, "ann", "Secret plans", "the platypus protocol\n", visibility="private")
    make(app, "ann", "Open plans", "the platypus picnic\n")
    assert sorted(titles(app, "platypus", "ann")) == ["Open plans", "Secret plans"]
    assert titles(app, "platypus", "bob") == ["Open plans"]
    assert titles(app, "platypus") == ["Open plans"]
    with app.app_context():
        assert search(_user("bob"), "platypus", 10, None).total == 1
        assert search(_user("bob"), "protocol", 10, None).total == 0
    token = accounts.token("bob")
    body = client.get(
        "/api/v1/search?q=platypus", headers={"Authorization": f"Bearer {token}"}
    ).get_json()
    assert body["total"] == 1 and [r["title"] for r in body["results"]] == ["Open plans"]
    assert "protocol" not in str(body)
    accounts.login(client, "bob")
    page = client.get("/search?q=protocol").get_data(as_text=True)
    assert "Secret" not in page and "0 documents found" in page


def test_api_save_makes_new_words_findable(app, accounts, client):
    accounts.create("ann")
    slug = make(app, "ann", "Diary", "nothing yet\n")
    token = accounts.token("ann")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/search?q=quokka", headers=headers).get_json()["total"] == 0
    with app.app_context():
        parent = services.repo(services.get_document(slug)).head("main")
    response = client.put(
        f"/api/v1/documents/{slug}/files/notes.md",
        json={"content": "met a quokka today", "parent": parent},
        headers=headers,
    )
    assert response.status_code == 201
    body = client.get("/api/v1/search?q=quokka", headers=headers).get_json()
    assert [r["title"] for r in body["results"]] == ["Diary"]
    assert "<mark>quokka</mark>" in body["results"][0]["snippet"]


def test_new_document_indexed_by_title_and_deletion_removes(app, accounts):
    accounts.create("ann")
    with app.app_context():
        document = services.create_document(_user("ann"), "Wombat census", visibility="public")
        slug = document.slug
    assert titles(app, "wombat") == ["Wombat census"]
    with app.app_context():
        document = services.get_document(slug)
        services.delete_document(_user("ann"), document, confirm_slug=slug)
    assert titles(app, "wombat") == []


def test_reindex_gives_identical_results(app, accounts):
    accounts.create("ann")
    make(app, "ann", "Alpha", "shared words about otters\n")
    make(app, "ann", "Otters", "more about otters and beavers\n")
    make(app, "ann", "Beta", "beavers only\n", visibility="private")

    def snapshot():
        with app.app_context():
            actor = _user("ann")
            return [
                [(h.document.slug, str(h.snippet)) for h in search(actor, q, 10, None).hits]
                for q in ("otters", "beav*", '"about otters"', "otters -beavers")
            ]

    before = snapshot()
    assert all(before)
    with app.app_context():
        session = db.session()
        session.execute(text("DELETE FROM search_entries"))
        session.commit()
    assert all(not result for result in snapshot())
    result = app.test_cli_runner().invoke(args=["search", "reindex"])
    assert result.exit_code == 0 and "indexed 3 documents" in result.output
    assert snapshot() == before
    with app.app_context():
        assert reindex_all() == 3
    assert snapshot() == before


def test_cursor_pages(app, accounts):
    accounts.create("ann")
    for n in range(3):
        make(app, "ann", f"Page {n}", "kestrel\n")
    with app.app_context():
        first = search(None, "kestrel", 2, None)
        second = search(None, "kestrel", 2, first.next_cursor)
    assert first.total == 3 and len(first.hits) == 2 and first.next_cursor
    assert len(second.hits) == 1 and second.next_cursor is None
    seen = {h.document.slug for h in first.hits + second.hits}
    assert len(seen) == 3
