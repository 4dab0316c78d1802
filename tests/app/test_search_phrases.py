"""Phrase search's shortcuts: PostgreSQL's word-pair filters and the snippet matcher.

The pair filter may only ever say "maybe" for a document that holds the phrase: the
tests compare every phrase's results with and without the filters, check the SQL
and Python hashes agree on non-ASCII words, and check the filter does reject (or it
would be dead weight). The snippet matcher must mark what the old look-behind
pattern marked, case-insensitively, at word starts only, with offsets intact.
"""

from __future__ import annotations

import random

import pytest
from sqlalchemy import text

from app import db
from app.search import pairs, snippets
from app.search import query as syntax
from app.search.index import Filters, search
from tests.app.test_search import _user, flush, make, titles

WORDS = ["amber", "birch", "cedar", "delta", "ember", "fjord", "grove", "heath", "inlet"]


def _postgres_only(app) -> None:
    with app.app_context():
        if db.get_db().engine.dialect.name != "postgresql":
            pytest.skip("pair filters exist on PostgreSQL only")


def _indexed(app, accounts, title: str, body: str) -> str:
    """On PostgreSQL only: ann's public document, indexed; its slug."""
    _postgres_only(app)
    accounts.create("ann")
    slug = make(app, "ann", title, body)
    flush(app)
    return slug


# --- the filter itself --------------------------------------------------------------


def test_a_filter_holds_every_pair_it_was_built_from_and_rejects_most_others():
    rng = random.Random(7)
    built = {(rng.choice(WORDS) + str(rng.randint(0, 300)), rng.choice(WORDS)) for _ in range(900)}
    data = pairs.build(pairs.pair_hash(a, b) for a, b in built)
    assert data is not None and len(data) == -(-len(built) * pairs.BITS_PER_PAIR // 8)
    for a, b in built:
        assert pairs.may_hold(data, [pairs._spread(pairs.pair_hash(a, b))])  # noqa: SLF001
    others = [(f"x{i}", f"y{i}") for i in range(2_000)]
    passed = sum(
        pairs.may_hold(data, [pairs._spread(pairs.pair_hash(a, b))])  # noqa: SLF001
        for a, b in others
    )
    assert passed < 0.03 * len(others)  # ~1 % expected
    assert pairs.build([]) is None and pairs.may_hold(None, [(1, 2, 3, 4)])


def test_probes_skip_stop_word_gaps_and_shared_positions():
    # "end of day": the stop word leaves positions 1 and 3, nothing adjacent to test.
    assert pairs.probes([("end", [1]), ("day", [3])]) == []
    assert len(pairs.probes([("quick", [1]), ("brown", [2]), ("fox", [3])])) == 2
    # Two lexemes at one position (a dictionary's variants): that neighbour is skipped.
    assert pairs.probes([("a", [1]), ("b", [1]), ("c", [2])]) == []


def test_sql_and_python_hash_the_same_pairs(app, accounts):
    _indexed(app, accounts, "Hash", "Café naïve Ωmega straße 東京 tower café naïve\n")
    with app.app_context():
        session = db.session()
        document_id = session.scalar(text("SELECT id FROM documents WHERE title = 'Hash'"))
        from_sql = set(session.scalars(text(pairs.ENTRY_PAIR_HASHES), {"id": document_id}).all())
        rows = session.execute(
            text(
                "SELECT u.lexeme, u.positions FROM search_entries AS e, unnest(e.tsv) AS u"
                " WHERE e.document_id = :id"
            ),
            {"id": document_id},
        ).all()
    at = {p: lexeme for lexeme, positions in rows for p in positions}
    from_python = {pairs.pair_hash(at[p], at[p + 1]) for p in at if p + 1 in at}
    assert from_sql == from_python and len(from_sql) >= 6


# --- phrases through the whole search, with and without the filters -----------------


def _corpus(app, accounts) -> list[str]:
    accounts.create("ann")
    rng = random.Random(11)
    bodies = []
    for i in range(12):
        words = [rng.choice(WORDS) for _ in range(160)]
        if i % 4 == 0:
            words[40:43] = ["end", "of", "day"]  # a stop word inside a phrase
        bodies.append(" ".join(words) + "\n")
        make(app, "ann", f"Doc {i}", bodies[-1], visibility="public" if i % 3 else "private")
    flush(app)
    return bodies


def _phrases(bodies: list[str]) -> list[str]:
    rng = random.Random(12)
    chosen = {'"end of day"', '"day end"', '"amber birch cedar"', '"grove heath*"'}
    for body in bodies:
        words = body.split()
        at = rng.randrange(len(words) - 3)
        chosen.add(f'"{words[at]} {words[at + 1]}"')
        chosen.add(f'"{words[at]} {words[at + 1]} {words[at + 2]}"')
    chosen |= {f'"{a} {b}"' for a in WORDS[:4] for b in WORDS[:4]}
    return sorted(chosen)


def test_filters_never_change_phrase_results(app, accounts):
    _postgres_only(app)
    bodies = _corpus(app, accounts)
    queries = _phrases(bodies)

    def everything() -> dict[str, list]:
        with app.app_context():
            out = {}
            for q in queries:
                for who in ("ann", None):
                    found = search(_user(who) if who else None, q, 50, None, Filters())
                    out[f"{who}:{q}"] = ([h.document.slug for h in found.hits], found.total)
            return out

    with app.app_context():
        assert db.session().scalar(text("SELECT count(*) FROM search_pairs")) == 12
    filtered = everything()
    with app.app_context():
        db.session().execute(text("DELETE FROM search_pairs"))  # no filter: "maybe" for all
        db.session().commit()
    assert everything() == filtered
    assert any(total for _, total in filtered.values())
    assert any(not total for _, total in filtered.values())


def test_the_filter_rejects_documents_without_the_phrase(app, accounts):
    _postgres_only(app)
    accounts.create("ann")
    make(app, "ann", "Has", "the amber fjord lies north\n")
    make(app, "ann", "Lacks", "fjord first then amber later\n")
    flush(app)
    with app.app_context():
        session = db.session()
        rows = dict(
            session.execute(
                text(
                    "SELECT d.title, p.pairs FROM search_pairs p"
                    " JOIN documents d ON d.id = p.document_id"
                )
            ).all()
        )
        lexemes = session.execute(
            text("SELECT lexeme, positions FROM unnest(to_tsvector('english', 'amber fjord'))")
        ).all()
    probes = pairs.probes(lexemes)
    assert probes
    assert pairs.may_hold(rows["Has"], probes) and not pairs.may_hold(rows["Lacks"], probes)
    assert titles(app, '"amber fjord"') == ["Has"]


def test_a_retitle_rebuilds_the_filter_and_old_entries_without_one_still_match(app, accounts):
    slug = _indexed(app, accounts, "Short", "quiet harbour lights\n")
    with app.app_context():
        session = db.session()
        before = session.scalar(text("SELECT pairs FROM search_pairs"))
        from app.documents import services

        document = services.get_document(slug)
        document.title = "A much longer title than before"
        session.commit()
        after = session.scalar(text("SELECT pairs FROM search_pairs"))
    assert after != before
    assert titles(app, '"harbour lights"') == ["A much longer title than before"]
    assert titles(app, '"longer title"') == ["A much longer title than before"]
    with app.app_context():
        db.session().execute(text("DELETE FROM search_pairs"))  # an entry from before 0401
        db.session().commit()
    assert titles(app, '"harbour lights"') == ["A much longer title than before"]


def test_an_entry_rewritten_without_its_filter_is_never_filtered_by_a_stale_one(app, accounts):
    """An older release (during a deploy, after a rollback) writes entries but no filters."""
    _indexed(app, accounts, "Log", "calm seas today\n")
    with app.app_context():
        session = db.session()
        session.execute(
            text(
                "UPDATE search_entries SET body = 'storm warning issued',"
                " tsv = to_tsvector('english', 'Log storm warning issued')"
            )
        )
        session.commit()
        assert session.scalar(text("SELECT count(*) FROM search_pairs")) == 0
    assert titles(app, '"storm warning"') == ["Log"]


def test_deleting_a_document_removes_its_filter(app, accounts):
    slug = _indexed(app, accounts, "Gone", "soon gone words\n")
    with app.app_context():
        from app.documents import services

        services.delete_document(_user("ann"), services.get_document(slug), confirm_slug=slug)
        assert db.session().scalar(text("SELECT count(*) FROM search_pairs")) == 0


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
