"""Full-text search on SQLite FTS5 and PostgreSQL: syntax, ranking, permissions,
filters, pagination, background indexing with catch-up, reindex, history search."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text, update

import gitstore
from app import db
from app import search as search_pkg
from app.accounts.models import User
from app.config import ConfigError, Settings
from app.documents import services
from app.documents.models import Document
from app.search import query as syntax
from app.search.index import (
    Filters,
    UnknownLanguage,
    check_language,
    create_entries_table,
    search,
)

DEADLINE = 5.0


def _user(username: str) -> User:
    return db.session().scalar(select(User).where(User.username == username))


def make(app, owner: str, title: str, body: str, *, visibility: str = "public", path="document.md"):
    """A document whose ``path`` holds ``body``, saved through the service (signal)."""
    with app.app_context():
        user = _user(owner)
        document = services.create_document(user, title, visibility=visibility)
        parent = services.repo(document).head("main")
        services.save_file(
            user,
            document,
            branch="main",
            path=path,
            content=body,
            message="Write",
            parent=parent,
        )
        return document.slug


def flush(app) -> None:
    with app.app_context():
        search_pkg.flush(app)


def titles(app, q: str, username: str | None = None, **filters) -> list[str]:
    with app.app_context():
        actor = _user(username) if username else None
        found = search(actor, q, 20, None, Filters(**filters))
        return [hit.document.title for hit in found.hits]


def eventually(probe, deadline: float = DEADLINE):
    """Poll ``probe`` until it returns something truthy or the deadline passes."""
    end = time.monotonic() + deadline
    while True:
        value = probe()
        if value or time.monotonic() > end:
            return value
        time.sleep(0.05)


@pytest.fixture
def index_table_restored(app):
    """Tests that drop the index table leave it in place for the next test, whatever happens."""
    yield
    with app.app_context():
        engine = db.get_db().engine
        with engine.begin() as conn:
            create_entries_table(conn)


def test_query_translation():
    clauses = syntax.parse('alpha "exact words" colla* -draft')
    assert syntax.to_fts5(clauses) == '("alpha" AND "exact words" AND "colla"*) NOT "draft"'
    # A title match is a match of the whole query: the exclusion still covers the body.
    assert syntax.to_fts5(clauses, column="title") == (
        '(title : ("alpha" AND "exact words" AND "colla"*)) NOT "draft"'
    )
    assert syntax.to_tsquery(clauses) == (
        "('alpha') & ('exact' <-> 'words') & ('colla':*) & !('draft')"
    )
    assert syntax.to_fts5(syntax.parse("-only")) is None
    assert syntax.to_tsquery(syntax.parse("'); drop table x; --")) == (
        "('drop') & ('table') & ('x')"
    )


def test_title_ranks_above_body(app, accounts):
    accounts.create("ann")
    # The body repeats the word: on text score alone it would win.
    make(app, "ann", "Notes", "heliotrope " * 30 + "\n")
    make(app, "ann", "Heliotrope", "A plant.\n")
    flush(app)
    assert titles(app, "heliotrope") == ["Heliotrope", "Notes"]


def test_phrase_prefix_exclusion(app, accounts):
    accounts.create("ann")
    make(app, "ann", "One", "the quick brown fox jumps\n")
    make(app, "ann", "Two", "brown quick fox, a draft about collaboration\n")
    flush(app)
    assert titles(app, '"quick brown"') == ["One"]
    assert sorted(titles(app, "quick brown")) == ["One", "Two"]
    assert titles(app, "colla*") == ["Two"]
    assert titles(app, "fox -draft") == ["One"]
    assert titles(app, "-draft") == []


def test_an_excluded_word_in_the_body_rules_out_a_title_match(app, accounts):
    accounts.create("ann")
    make(app, "ann", "Fox tales", "an early draft\n")
    make(app, "ann", "Fox facts", "a finished text\n")
    flush(app)
    assert titles(app, "fox -draft") == ["Fox facts"]
    assert sorted(titles(app, "fox")) == ["Fox facts", "Fox tales"]


def test_snippet_highlights_escapes_and_says_where(app, accounts, client):
    accounts.create("ann")
    body = "# Intro\n\nNothing here.\n\n## Flight\n\n<script>alert(1)</script> the zeppelin flies\n"
    slug = make(app, "ann", "Markup", body)
    flush(app)
    with app.app_context():
        (hit,) = search(None, "zeppelin", 10, None).hits
    snippet = str(hit.snippet)
    assert "<mark>zeppelin</mark>" in snippet
    # Only the marks are markup: SQLite keeps the tag text (escaped), ts_headline drops tags.
    assert "<script>" not in snippet and "alert(1)" in snippet
    assert (hit.path, hit.heading) == ("document.md", "Flight")
    html = client.get("/search?q=zeppelin").get_data(as_text=True)
    assert "<mark>zeppelin</mark>" in html and "<script>alert" not in html
    assert f'href="/d/{slug}/blob/main/document.md"' in html and "Flight" in html


def test_hit_in_a_second_file_names_that_file(app, accounts, client):
    accounts.create("ann")
    slug = make(app, "ann", "Book", "# Preface\n\nplain words\n")
    with app.app_context():
        document = services.get_document(slug)
        parent = services.repo(document).head("main")
        services.save_file(
            _user("ann"),
            document,
            branch="main",
            path="chapters/two.md",
            content="# Two\n\n## The storm\n\nthunder rolls over the moor\n",
            message="Chapter two",
            parent=parent,
        )
    flush(app)
    token = accounts.token("ann")
    body = client.get(
        "/api/v1/search?q=thunder", headers={"Authorization": f"Bearer {token}"}
    ).get_json()
    (result,) = body["results"]
    assert (result["path"], result["heading"]) == ("chapters/two.md", "The storm")
    assert result["title_match"] is False


def test_private_document_never_leaks(app, accounts, client):
    accounts.create("root")  # the first account is the site's admin
    accounts.create("ann")
    accounts.create("bob")
    make(app, "ann", "Secret plans", "the platypus protocol\n", visibility="private")
    make(app, "ann", "Open plans", "the platypus picnic\n")
    flush(app)
    assert sorted(titles(app, "platypus", "ann")) == ["Open plans", "Secret plans"]
    assert titles(app, "platypus", "bob") == ["Open plans"]
    assert titles(app, "platypus") == ["Open plans"]
    # Filters narrow inside the permission rule, never around it.
    assert titles(app, "platypus", "bob", member="ann") == ["Open plans"]
    assert titles(app, "secret", "bob") == []
    with app.app_context():
        assert search(_user("bob"), "platypus", 10, None).total == 1
        assert search(_user("bob"), "protocol", 10, None).total == 0
        assert search(None, "platypus -picnic", 10, None).total == 0
    token = accounts.token("bob")
    body = client.get(
        "/api/v1/search?q=platypus", headers={"Authorization": f"Bearer {token}"}
    ).get_json()
    assert body["total"] == 1 and [r["title"] for r in body["results"]] == ["Open plans"]
    assert "protocol" not in str(body) and "Secret" not in str(body)
    accounts.login(client, "bob")
    page = client.get("/search?q=protocol").get_data(as_text=True)
    assert "Secret" not in page and "0 documents found" in page
    # The API ignores the session cookie: bob's cookie gives an anonymous search there.
    assert client.get("/api/v1/search?q=platypus").get_json()["total"] == 1


def test_one_statement_per_shape_serves_every_reader(app, accounts):
    """Searches of one shape share a built statement; each binds its own reader and
    filter values, so one reader's never answers another's."""
    from app.search import index as index_module

    accounts.create("root")  # the first account is the site's admin
    accounts.create("ann")
    accounts.create("bob")
    make(app, "ann", "Ann's ibis", "ibis notes\n", visibility="private")
    make(app, "bob", "Bob's ibis", "ibis notes\n", visibility="private")
    flush(app)
    index_module._STATEMENTS.clear()
    assert titles(app, "ibis", "ann") == ["Ann's ibis"]
    assert titles(app, "ibis", "bob") == ["Bob's ibis"]
    assert titles(app, "notes", "bob", mine=True) == ["Bob's ibis"]
    assert titles(app, "notes", "ann", mine=True) == ["Ann's ibis"]
    assert titles(app, "notes", "ann", member="bob") == []
    assert titles(app, "notes", "bob", member="bob") == ["Bob's ibis"]
    assert titles(app, "ibis", "root", member="ann") == ["Ann's ibis"]
    assert titles(app, "ibis") == []
    assert len(index_module._STATEMENTS) == 5  # reader; mine; member; admin + member; anonymous


def test_filters_mine_member_since(app, accounts, client):
    accounts.create("root")  # the first account is the site's admin
    accounts.create("ann")
    accounts.create("bob")
    accounts.create("cy")
    make(app, "ann", "Ann's gannets", "gannet colony\n")
    bobs = make(app, "bob", "Bob's gannets", "gannet watch\n", visibility="private")
    with app.app_context():
        document = services.get_document(bobs)
        services.set_member(_user("bob"), document, "cy", "viewer")
        session = db.session()
        session.execute(
            update(Document)
            .where(Document.slug == bobs)
            .values(updated_at=datetime.now(UTC) - timedelta(days=30))
        )
        session.commit()
    flush(app)
    assert sorted(titles(app, "gannet", "cy")) == ["Ann's gannets", "Bob's gannets"]
    assert titles(app, "gannet", "cy", member="cy") == ["Bob's gannets"]
    assert titles(app, "gannet", "ann", member="cy") == []  # ann may not read bob's
    assert titles(app, "gannet", "ann", mine=True) == ["Ann's gannets"]
    assert titles(app, "gannet", None, mine=True) == []
    recent = (datetime.now(UTC) - timedelta(days=2)).date()
    assert titles(app, "gannet", "cy", since=recent) == ["Ann's gannets"]
    accounts.login(client, "cy")
    html = client.get("/search?q=gannet&member=bob").get_data(as_text=True)
    assert "1 document found" in html and "Bob&#39;s gannets" in html
    html = client.get(f"/search?q=gannet&member=bob&since={recent}").get_data(as_text=True)
    assert "0 documents found" in html
    bad = client.get("/search?q=gannet&since=yesterday")
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.get_data(as_text=True)


def test_cursor_pages_in_page_and_api(app, accounts, client):
    accounts.create("ann")
    for n in range(5):
        make(app, "ann", f"Page {n}", "kestrel " * (n + 1) + "\n")
    make(app, "ann", "Kestrel", "a bird\n")
    flush(app)
    with app.app_context():
        seen, cursor, pages = [], None, 0
        while True:
            found = search(None, "kestrel", 2, cursor)
            assert found.total == 6
            seen += [h.document.title for h in found.hits]
            pages += 1
            cursor = found.next_cursor
            if cursor is None:
                break
    assert pages == 3 and len(seen) == 6 and len(set(seen)) == 6
    assert seen[0] == "Kestrel"  # the title match leads, across pages too
    body = client.get("/api/v1/search?q=kestrel&limit=4").get_json()
    rest = client.get(f"/api/v1/search?q=kestrel&limit=4&cursor={body['next_cursor']}").get_json()
    api_titles = [r["title"] for r in body["results"] + rest["results"]]
    assert api_titles == seen and rest["next_cursor"] is None
    assert body["total"] == body["reachable"] == 6
    html = client.get("/search?q=kestrel&limit=4").get_data(as_text=True)
    more = re.search(r'href="(/search\?[^"]*cursor=[^"]+)"', html)
    assert more, html
    second = client.get(more.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert seen[4] in second and seen[0] not in second.split('class="search-results"')[1]
    assert client.get("/api/v1/search?q=kestrel&cursor=nonsense").status_code == 400
    assert client.get("/api/v1/search?q=kestrel&limit=0").status_code == 400
    assert client.get("/search?q=kestrel&cursor=%%%").status_code == 400


def test_postgres_pages_through_the_ranked_candidates_only(app, accounts, monkeypatch):
    from app.search import index as index_module

    monkeypatch.setattr(index_module, "RANK_CANDIDATES", 2)
    accounts.create("ann")
    for n in range(3):
        make(app, "ann", f"Heron {n}", "heron\n")
    flush(app)
    with app.app_context():
        first = search(None, "heron", 5, None)
        postgres = db.session().get_bind().dialect.name == "postgresql"
    assert first.total == 3 and first.next_cursor is None
    assert (len(first.hits), first.reachable) == ((2, 2) if postgres else (3, 3))


def test_totals_above_the_cap_are_lower_bounds(app, accounts, client, monkeypatch):
    """Above TOTAL_CAP the total says "at least", counting only what the caller may read."""
    from app.search import index as index_module

    accounts.create("ann")
    make(app, "ann", "Osprey nest", "seen from the hide\n")
    for n in range(3):
        make(app, "ann", f"Shore walk {n}", f"an osprey nest on pole {n}\n")
    make(app, "ann", "Private walk", "an osprey nest nobody else sees\n", visibility="private")
    flush(app)
    monkeypatch.setattr(index_module, "TOTAL_CAP", 4)
    with app.app_context():
        for q in ("osprey", '"osprey nest"'):
            public = search(None, q, 10, None)  # 4 readable matches: exactly the cap
            assert (public.total, public.total_is_lower_bound) == (4, False), q
            assert public.hits[0].title_match and public.hits[0].document.title == "Osprey nest"
            assert "Private walk" not in [h.document.title for h in public.hits]
            owner = search(_user("ann"), q, 10, None)  # 5 readable: more than the cap
            assert (owner.total, owner.total_is_lower_bound) == (4, True), q
            assert owner.hits[0].document.title == "Osprey nest"
            assert owner.reachable is not None and owner.reachable <= owner.total
    monkeypatch.setattr(index_module, "TOTAL_CAP", 2)
    body = client.get("/api/v1/search?q=%22osprey+nest%22").get_json()
    assert (body["total"], body["total_is_lower_bound"]) == (2, True)
    assert body["results"][0]["title"] == "Osprey nest"
    assert "Private walk" not in [r["title"] for r in body["results"]]
    html = client.get("/search?q=osprey").get_data(as_text=True)
    assert "2+ documents found" in html
    monkeypatch.setattr(index_module, "TOTAL_CAP", 1_000)
    body = client.get("/api/v1/search?q=osprey").get_json()
    assert (body["total"], body["total_is_lower_bound"]) == (4, False)
    assert "4 documents found" in client.get("/search?q=osprey").get_data(as_text=True)


def test_web_save_api_save_and_restore_are_found_within_seconds(app, accounts, client):
    """Every branch-moving path through the app queues the document; the worker indexes it."""
    accounts.create("ann")
    slug = make(app, "ann", "Diary", "nothing yet\n")
    token = accounts.token("ann")
    headers = {"Authorization": f"Bearer {token}"}

    def found(q: str) -> list[str]:
        body = client.get(f"/api/v1/search?q={q}", headers=headers).get_json()
        return [r["title"] for r in body["results"]]

    assert found("quokka") == []
    with app.app_context():
        first = services.repo(services.get_document(slug)).head("main")
    response = client.put(
        f"/api/v1/documents/{slug}/files/notes.md",
        json={"content": "met a quokka today", "parent": first},
        headers=headers,
    )
    assert response.status_code == 201
    assert eventually(lambda: found("quokka")) == ["Diary"]

    accounts.login(client, "ann")
    html = client.get(f"/d/{slug}/edit/main/document.md").get_data(as_text=True)
    parent = re.search(r'name="parent" value="([0-9a-f]{40})"', html).group(1)
    response = client.submit(
        f"/d/{slug}/edit/main/document.md",
        {"content": "a numbat visited\n", "message": "", "parent": parent},
    )
    assert response.status_code == 302
    assert eventually(lambda: found("numbat")) == ["Diary"]

    # Restore the first version: both later words leave the index.
    response = client.submit(
        f"/d/{slug}/restore/{first}", {"branch": "main"}, page=f"/d/{slug}/commit/{first}"
    )
    assert response.status_code == 302
    assert eventually(lambda: not found("numbat") and not found("quokka"))
    assert found("nothing") == ["Diary"]


def test_a_merged_request_is_found_within_seconds(app, accounts, client):
    """A merge moves the default branch through ``ref_updated`` like any other path."""
    from app.mergerequests import services as merge_requests

    accounts.create("ann")
    slug = make(app, "ann", "Field guide", "# Cats\n\nlions\n")
    with app.app_context():
        document = services.get_document(slug)
        services.create_branch(_user("ann"), document, "draft", "main")
        services.save_file(
            _user("ann"),
            document,
            branch="draft",
            path="document.md",
            content="# Cats\n\nlions\n\n## Small cats\n\nthe ocelot hunts at night\n",
            message="Ocelots",
            parent=services.repo(document).head("draft"),
        )
    flush(app)
    assert titles(app, "ocelot") == []  # only the default branch is searched
    with app.app_context():
        document = services.get_document(slug)
        mr = merge_requests.open_merge_request(
            _user("ann"), document, source="draft", target="main", title="Ocelots"
        )
        merge_requests.merge(_user("ann"), mr, style="merge")

    def found():
        with app.app_context():
            return [(h.document.title, h.heading) for h in search(None, "ocelot", 5, None).hits]

    assert eventually(found) == [("Field guide", "Small cats")]


def test_a_broken_index_never_fails_a_save_and_reindex_heals(
    app, accounts, client, index_table_restored
):
    accounts.create("ann")
    slug = make(app, "ann", "Sturdy", "first words\n")
    search_pkg.get_indexer(app).stop()  # dropping a table under a writer would deadlock
    with app.app_context():
        session = db.session()
        session.execute(text("DROP TABLE search_entries"))
        session.commit()
    accounts.login(client, "ann")
    html = client.get(f"/d/{slug}/edit/main/document.md").get_data(as_text=True)
    parent = re.search(r'name="parent" value="([0-9a-f]{40})"', html).group(1)
    response = client.submit(
        f"/d/{slug}/edit/main/document.md",
        {"content": "an echidna wandered in\n", "message": "", "parent": parent},
    )
    assert response.status_code == 302
    flush(app)  # the indexer fails on the missing table, logs, and keeps going
    result = app.test_cli_runner().invoke(args=["search", "reindex"])
    assert result.exit_code == 0, result.output
    assert titles(app, "echidna") == ["Sturdy"]


def test_catch_up_heals_changes_it_was_never_told_about(app, accounts):
    accounts.create("ann")
    slug = make(app, "ann", "Quiet", "old words\n")
    # No background worker here: its own catch-up would race the assertions below.
    search_pkg.get_indexer(app).stop()
    flush(app)
    with app.app_context():
        document = services.get_document(slug)
        repo = services.repo(document)
        # A change straight in the repository: no signal, no queue.
        repo.write(
            "main",
            [gitstore.Put("document.md", "a pangolin appears\n")],
            parent=repo.head("main"),
            author=gitstore.Author("Ann", "ann@example.com"),
            message="Behind the app's back",
        )
    flush(app)
    assert titles(app, "pangolin") == []
    with app.app_context():
        assert search_pkg.get_indexer(app).catch_up() == 1
        assert search_pkg.get_indexer(app).catch_up() == 1  # still queued until indexed
    flush(app)
    assert titles(app, "pangolin") == ["Quiet"]
    with app.app_context():
        assert search_pkg.get_indexer(app).catch_up() == 0


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


def test_reindex_rebuilds_identical_results_after_the_table_is_dropped(
    app, accounts, index_table_restored
):
    accounts.create("ann")
    make(app, "ann", "Alpha", "# Rivers\n\nshared words about otters\n")
    make(app, "ann", "Otters", "more about otters and beavers\n")
    make(app, "ann", "Beta", "beavers only\n", visibility="private")
    flush(app)

    def snapshot():
        with app.app_context():
            actor = _user("ann")
            return [
                [
                    (h.document.slug, str(h.snippet), h.path, h.heading, h.title_match)
                    for h in search(actor, q, 10, None).hits
                ]
                for q in ("otters", "beav*", '"about otters"', "otters -beavers")
            ]

    before = snapshot()
    assert all(before)
    search_pkg.get_indexer(app).stop()  # dropping a table under a writer would deadlock
    with app.app_context():
        session = db.session()
        session.execute(text("DROP TABLE search_entries"))
        session.commit()
    result = app.test_cli_runner().invoke(args=["search", "reindex"])
    assert result.exit_code == 0 and "indexed 3 documents" in result.output
    assert snapshot() == before


def test_history_search_finds_the_commits_that_added_and_removed_a_phrase(app, accounts, client):
    accounts.create("root")  # the first account is the site's admin
    accounts.create("ann")
    accounts.create("bob")
    slug = make(app, "ann", "Chronicle", "the start\n", visibility="private")
    with app.app_context():
        document = services.get_document(slug)
        repo = services.repo(document)
        commits = {}
        for name, content in [
            ("add", "the start\nthe golden key appears\n"),
            ("other", "the start\nthe golden key appears\nmore\n"),
            ("remove", "the start\nmore\n"),
        ]:
            commits[name] = services.save_file(
                _user("ann"),
                document,
                branch="main",
                path="document.md",
                content=content,
                message=name,
                parent=repo.head("main"),
            ).commit
    accounts.login(client, "ann")
    history = client.get(f"/d/{slug}/history").get_data(as_text=True)
    assert f'action="/d/{slug}/history/search"' in history
    response = client.get(f"/d/{slug}/history/search?s=Golden+Key")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    found = re.findall(r'data-pickaxe-commit="([0-9a-f]{40})"', html)
    assert found == [commits["remove"], commits["add"]]
    assert f'href="/d/{slug}/commit/{commits["add"]}"' in html
    assert f'href="/d/{slug}/blob/{commits["add"]}/document.md"' in html
    assert "added" in html and "removed" in html
    assert client.get(f"/d/{slug}/history/search?s=" + "x" * 201).status_code == 400
    assert client.get(f"/d/{slug}/history/search?s=key&ref=nope").status_code == 404
    accounts.login(client, "bob")
    assert client.get(f"/d/{slug}/history/search?s=golden").status_code == 404


def test_search_box_on_every_page(client):
    html = client.get("/").get_data(as_text=True)
    assert 'role="search"' in html and 'for="site-search-q"' in html
    assert 'id="site-search-q"' in html and 'aria-keyshortcuts="/"' in html


def test_search_language_is_validated(app):
    with pytest.raises(ConfigError, match="SEARCH_LANGUAGE"):
        Settings.from_env({"SEARCH_LANGUAGE": "english; drop"}).validate()
    assert Settings.from_env({"SEARCH_LANGUAGE": "German"}).to_flask()["SEARCH_LANGUAGE"] == (
        "german"
    )
    with app.app_context():
        conn = db.session().connection()
        check_language(conn, "simple")
        if conn.dialect.name == "postgresql":
            with pytest.raises(UnknownLanguage, match="known: .*english"):
                check_language(conn, "klingon")
