"""Phrase search's shortcuts: PostgreSQL's word-pair index and the snippet matcher.

The pair index answers two-word phrases without reading positions, so it must agree
with PostgreSQL's own phrase operator on every document: the tests compare them
directly, compare whole searches with a check of every document, make sure the
index (and never the function behind it) is what a query reads, and that entries
written any way keep it current. The snippet matcher must mark what the old
look-behind pattern marked, case-insensitively, at word starts only, with offsets
intact, and cut the same snippet from a body's start as from the whole.
"""

from __future__ import annotations

import random

import pytest
from sqlalchemy import event, text

from app import db
from app.search import query as syntax
from app.search import snippets
from app.search.index import Filters, search
from tests.app.test_search import _user, flush, make, titles

WORDS = ["amber", "birch", "cedar", "delta", "ember", "fjord", "grove", "heath", "inlet"]


def _postgres_only(app) -> None:
    with app.app_context():
        if db.get_db().engine.dialect.name != "postgresql":
            pytest.skip("the word-pair index exists on PostgreSQL only")


def _corpus(app, accounts) -> list[str]:
    accounts.create("ann")
    rng = random.Random(11)
    bodies = []
    for i in range(12):
        words = [rng.choice(WORDS) for _ in range(160)]
        if i % 4 == 0:
            words[40:43] = ["end", "of", "day"]  # a stop word inside a phrase
        if i % 5 == 0:
            words[80:84] = ["Café", "naïve", "Ωmega", "東京"]  # beyond ASCII
        bodies.append(" ".join(words) + "\n")
        make(app, "ann", f"Doc {i}", bodies[-1], visibility="public" if i % 3 else "private")
    flush(app)
    return bodies


def _phrases(bodies: list[str]) -> list[str]:
    rng = random.Random(12)
    chosen = {
        '"end of day"',
        '"day end"',
        '"amber birch cedar"',
        '"grove heath*"',
        '"café naïve"',
        '"naïve ωmega"',
        '"ωmega 東京"',
        'amber -"birch cedar"',
        '"amber birch" "cedar delta"',
        '"amber birch" -fjord',
    }
    for body in bodies:
        words = body.split()
        at = rng.randrange(len(words) - 3)
        chosen.add(f'"{words[at]} {words[at + 1]}"')
        chosen.add(f'"{words[at]} {words[at + 1]} {words[at + 2]}"')
    chosen |= {f'"{a} {b}"' for a in WORDS[:4] for b in WORDS[:4]}
    return sorted(chosen)


def test_pair_keys_find_exactly_what_the_phrase_operator_finds(app, accounts):
    _postgres_only(app)
    bodies = _corpus(app, accounts)
    pairs_of_words = {tuple(b.split()[i : i + 2]) for b in bodies for i in range(0, 150, 7)}
    pairs_of_words |= {("ωmega", "東京"), ("café", "naïve"), ("birch", "amber")}
    with app.app_context():
        session = db.session()
        for a, b in sorted(pairs_of_words):
            args = {"phrase": f"{a} {b}", "q": f"'{a}' <-> '{b}'"}
            by_index = session.scalars(
                text(
                    "SELECT document_id FROM search_entries WHERE search_pair_keys(tsv)"
                    " @> search_pair_keys(to_tsvector('english', :phrase)) ORDER BY 1"
                ),
                args,
            ).all()
            by_positions = session.scalars(
                text(
                    "SELECT document_id FROM search_entries"
                    " WHERE tsv @@ to_tsquery('english', :q) ORDER BY 1"
                ),
                args,
            ).all()
            assert by_index == by_positions, (a, b)
        assert session.scalar(text("SELECT count(*) FROM search_entries")) == 12


def test_phrase_searches_equal_a_check_of_every_document(app, accounts):
    """Whatever the index answers alone and whatever it only narrows: results and
    totals are those of testing every readable document's positions."""
    _postgres_only(app)
    queries = _phrases(_corpus(app, accounts))
    with app.app_context():
        session = db.session()
        for q in queries:
            clauses = syntax.parse(q)
            for who in ("ann", None):
                actor = _user(who) if who else None
                found = search(actor, q, 50, None, Filters())
                expected = session.scalars(
                    text(
                        "SELECT d.slug FROM search_entries e JOIN documents d"
                        " ON d.id = e.document_id WHERE e.tsv @@ to_tsquery('english', :q)"
                        " AND (d.visibility = 'public' OR :member)"
                    ),
                    {"q": syntax.to_tsquery(clauses), "member": who == "ann"},
                ).all()
                assert sorted(h.document.slug for h in found.hits) == sorted(expected), q
                assert found.total == len(expected), q
    assert titles(app, '"end of day"', "ann")  # the stop word kept its place


@pytest.mark.parametrize("q", ['"amber birch"', '"amber birch" cedar', '"amber birch cedar"'])
def test_a_phrase_reads_the_pair_index_never_the_function_per_row(app, accounts, q):
    _postgres_only(app)
    _corpus(app, accounts)
    statements: list[tuple[str, dict]] = []
    with app.app_context():
        engine = db.get_db().engine

        def keep(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
            if "search_pair_keys(" in statement and "WITH hits" in statement:
                statements.append((statement, parameters))

        event.listen(engine, "before_cursor_execute", keep)
        try:
            search(_user("ann"), q, 10, None)
        finally:
            event.remove(engine, "before_cursor_execute", keep)
        assert statements  # the page, and the count when the page is empty
        statement, parameters = statements[0]
        raw = db.session().connection().connection.driver_connection
        raw.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(r[0] for r in raw.execute("EXPLAIN " + statement, parameters))
    assert "ix_search_entries_pairs" in plan, plan
    assert "Filter: (search_pair_keys" not in plan, plan


def test_the_pair_index_follows_every_write_of_an_entry(app, accounts):
    """A retitle shifts the body's positions; an entry written by hand (or by an older
    release) is indexed too: the index is PostgreSQL's, not the writer's."""
    _postgres_only(app)
    accounts.create("ann")
    slug = make(app, "ann", "Short", "quiet harbour lights\n")
    flush(app)
    assert titles(app, '"harbour lights"') == ["Short"]
    with app.app_context():
        from app.documents import services

        services.get_document(slug).title = "A much longer title than before"
        db.session().commit()
    flush(app)
    assert titles(app, '"harbour lights"') == ["A much longer title than before"]
    assert titles(app, '"longer title"') == ["A much longer title than before"]
    with app.app_context():
        session = db.session()
        session.execute(
            text(
                "UPDATE search_entries SET body = 'storm warning issued',"
                " tsv = to_tsvector('english', 'Log storm warning issued')"
            )
        )
        session.commit()
    assert titles(app, '"storm warning"') == ["A much longer title than before"]
    assert titles(app, '"harbour lights"') == []


# --- snippets ---------------------------------------------------------------------


def _cut(body: str, q: str) -> snippets.Snippet:
    return snippets.cut(body, snippets.patterns(syntax.parse(q)))


def test_snippet_marks_whole_words_case_insensitively():
    found = _cut("xkaiplai first, then Kaiplai and KAIPLAIS.", "kaiplai")
    assert found.text == ("xkaiplai first, then \ue000Kaiplai\ue001 and \ue000KAIPLAIS\ue001.")
    assert found.offset == len("xkaiplai first, then ")


def test_snippet_finds_a_phrase_that_starts_inside_a_rejected_match():
    # The first candidate starts mid-word ("xa a"); the real phrase starts inside it.
    assert _cut("xa a a b", '"a a"').offset == 3


def test_snippet_offsets_survive_characters_whose_lower_case_is_longer():
    body = "İstanbul İzmir and then the zeppelin"
    found = _cut(body, "zeppelin")
    assert found.offset == body.index("zeppelin")
    assert "\ue000zeppelin\ue001" in found.text


def test_a_snippet_cut_from_the_start_of_a_body_is_the_whole_body_s_snippet():
    compiled = snippets.patterns(syntax.parse('heron "tall reeds"'))
    body = "filler words here " * 40 + "a heron stands in tall reeds " + "more filler " * 400
    whole = snippets.cut(body, compiled)
    assert whole is not None and whole.offset == body.index("heron")
    decided = 0
    for n in range(0, len(body), 37):
        part = snippets.cut(body[:n], compiled, whole=False)
        assert part is None or part == whole, n
        decided += part is not None
    assert decided > 100  # most starts past the hit's window decide it
    assert snippets.cut(body[:700], compiled, whole=False) is None  # the hit lies beyond
    assert snippets.cut("no hit at all " * 300, compiled, whole=False) is None


def test_a_hit_deep_in_a_long_body_gets_its_snippet(app, accounts, client):
    from app.search.index import SNIPPET_PREFIX

    accounts.create("ann")
    filler = "plain filler sentence. " * (SNIPPET_PREFIX // 10)
    make(app, "ann", "Deep", filler + "the zebrafinch nests here.\n" + filler)
    make(app, "ann", "Shallow", "the zebrafinch sings.\n" + filler)
    flush(app)
    found = {r["title"]: r for r in client.get("/api/v1/search?q=zebrafinch").get_json()["results"]}
    assert "<mark>zebrafinch</mark> nests here." in found["Deep"]["snippet"]
    assert "<mark>zebrafinch</mark> sings." in found["Shallow"]["snippet"]
