"""history(), commit(): order, cursor pagination, path filter."""

from __future__ import annotations

import subprocess
import tempfile

import pygit2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitstore import Document, HistoryWalk, InvalidCursor, Put, RefNotFound


def _commits(doc, author, n: int) -> list[str]:
    oids = [doc.head("main")]
    for i in range(n):
        path = "even.md" if i % 2 == 0 else "odd.md"
        oids.append(
            doc.write(
                "main", [Put(path, f"{i}\n")], parent=oids[-1], author=author, message=f"c{i}"
            )
        )
    return oids


def test_history_newest_first(doc, author) -> None:
    oids = _commits(doc, author, 5)
    page = doc.history("main")
    assert [c.oid for c in page.commits] == list(reversed(oids))
    assert page.next_cursor is None
    assert page.commits[0].summary == "c4"
    assert page.commits[0].short == oids[-1][:7]


def test_pagination_covers_everything_once(doc, author) -> None:
    oids = _commits(doc, author, 11)  # 12 commits in all
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = doc.history("main", after=cursor, limit=5)
        seen.extend(c.oid for c in page.commits)
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(oids))


def test_path_filter_and_limits(doc, author) -> None:
    oids = _commits(doc, author, 6)
    odd = doc.history("main", path="odd.md")
    assert [c.summary for c in odd.commits] == ["c5", "c3", "c1"]
    doc_md = doc.history("main", path="document.md")
    assert [c.oid for c in doc_md.commits] == [oids[0]]
    first = doc.history("main", path="even.md", limit=2)
    assert [c.summary for c in first.commits] == ["c4", "c2"]
    rest = doc.history("main", path="even.md", after=first.next_cursor, limit=2)
    assert [c.summary for c in rest.commits] == ["c0"] and rest.next_cursor is None
    assert len(doc.history("main", limit=0).commits) == 1  # clamped to 1
    assert len(doc.history("main", limit=10_000).commits) == 7  # clamped to 500


def test_unknown_refs(doc) -> None:
    with pytest.raises(RefNotFound):
        doc.history("nope")
    with pytest.raises(RefNotFound):
        doc.commit("0" * 40)


# --- paging across merges -------------------------------------------------------------

_SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _build(repo: pygit2.Repository, graph: list[tuple[list[int], int, int]]) -> list[str]:
    """Commits from ``(parent indexes, commit time, a.md version)``; returns their oids.

    Every commit changes b.md, and a.md only when its version differs from its
    first parent's, so a path filter on a.md keeps some commits and drops others.
    """
    oids: list[str] = []
    versions: list[int] = []
    for index, (parents, when, version) in enumerate(graph):
        builder = repo.TreeBuilder()
        builder.insert("a.md", repo.create_blob(f"a{version}\n".encode()), pygit2.GIT_FILEMODE_BLOB)
        builder.insert("b.md", repo.create_blob(f"b{index}\n".encode()), pygit2.GIT_FILEMODE_BLOB)
        sig = pygit2.Signature("Ada", "ada@example.org", when, 0)
        oid = repo.create_commit(
            None,
            sig,
            sig,
            f"c{index}\n",
            builder.write(),
            [pygit2.Oid(hex=oids[p]) for p in parents],
        )
        oids.append(str(oid))
        versions.append(version)
    return oids


def _paged(doc: Document, head: str, limit: int, path: str | None = None) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        page = doc.history(head, after=cursor, limit=limit, path=path)
        assert len(page.commits) <= limit
        seen.extend(c.oid for c in page.commits)
        if page.next_cursor is None:
            return seen
        assert page.commits and len(page.commits) == limit
        assert len(page.next_cursor) <= 41 * 8  # a frontier, not a list of what was shown
        cursor = page.next_cursor


def _unpaged(doc: Document, head: str, path: str | None = None) -> list[str]:
    page = doc.history(head, limit=500, path=path)
    assert page.next_cursor is None
    return [c.oid for c in page.commits]


def _rev_list(doc: Document, head: str) -> list[str]:
    out = subprocess.run(
        ["git", "-C", str(doc.path), "rev-list", head], capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def _check(doc: Document, oids: list[str], graph) -> None:
    head = oids[-1]
    whole = _unpaged(doc, head)
    # One walk: every reachable commit once (as git says), children before parents.
    assert len(whole) == len(set(whole)) and set(whole) == set(_rev_list(doc, head))
    position = {oid: i for i, oid in enumerate(whole)}
    for index, (parents, _, _) in enumerate(graph):
        if oids[index] in position:
            assert all(position[oids[index]] < position[oids[p]] for p in parents)
    filtered = _unpaged(doc, head, path="a.md")
    for limit in range(1, 6):
        assert _paged(doc, head, limit) == whole, limit
        assert _paged(doc, head, limit, path="a.md") == filtered, limit


@st.composite
def histories(draw) -> list[tuple[list[int], int, int]]:
    """Random DAGs: merges of up to three parents, criss-crosses, many equal times.

    A commit is never older than its parents (clocks that run backwards are the
    one case paging does not promise to handle).
    """
    size = draw(st.integers(1, 18))
    equal_times = draw(st.booleans())
    graph: list[tuple[list[int], int, int]] = []
    for index in range(size):
        parents: list[int] = []
        if index:
            parents = draw(st.lists(st.integers(0, index - 1), min_size=1, max_size=3, unique=True))
        oldest = max((graph[p][1] for p in parents), default=1_700_000_000)
        step = 0 if equal_times else draw(st.integers(0, 2))
        graph.append((parents, oldest + step, draw(st.integers(0, 2))))
    return graph


@_SETTINGS
@given(graph=histories())
def test_paging_equals_one_walk_on_any_history(graph) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = pygit2.init_repository(tmp, bare=True)
        doc = Document("prop", tmp)
        _check(doc, _build(repo, graph), graph)


def test_page_two_shows_the_merged_branch(doc) -> None:
    """The bug this fixes: restarting at the last shown commit lost the side branch."""
    t = 1_700_000_000
    graph = [
        ([], t, 0),  # 0 root
        ([0], t + 1, 0),  # 1 main
        ([1], t + 2, 1),  # 2 side, from 1
        ([2], t + 3, 1),  # 3 side
        ([1], t + 5, 2),  # 4 main
        ([4, 3], t + 6, 2),  # 5 merge side into main
    ]
    oids = _build(doc.repo, graph)
    first = doc.history(oids[5], limit=2)
    assert [c.oid for c in first.commits] == [oids[5], oids[4]]
    assert first.next_cursor == f"{oids[3]}.{oids[1]}"  # the frontier: side tip, then main
    second = doc.history(oids[5], after=first.next_cursor, limit=2)
    assert [c.oid for c in second.commits] == [oids[3], oids[2]]
    third = doc.history(oids[5], after=second.next_cursor, limit=2)
    assert [c.oid for c in third.commits] == [oids[1], oids[0]] and third.next_cursor is None
    # With distinct times the order is libgit2's lazy date order, as before.
    assert _unpaged(doc, oids[5]) == [
        str(c.id) for c in doc.repo.walk(oids[5], pygit2.enums.SortMode.NONE)
    ]
    _check(doc, oids, graph)


def test_equal_times_where_a_restarted_libgit2_walk_repeats_a_commit(doc) -> None:
    """Merge parents [B, A] with A a child of B, all in one second.

    libgit2's lazy walk goes M, B, A, O; restarted from its frontier after M, B it
    would reach B again through A. This walk waits for A before B.
    """
    t = 1_700_000_000
    graph = [([], t, 0), ([0], t, 1), ([1], t, 2), ([1, 2], t, 0)]  # O, B, A, M
    oids = _build(doc.repo, graph)
    assert [str(c.id) for c in doc.repo.walk(oids[3], pygit2.enums.SortMode.NONE)] == [
        oids[3],
        oids[1],
        oids[2],
        oids[0],
    ]
    assert _unpaged(doc, oids[3]) == [oids[3], oids[2], oids[1], oids[0]]
    _check(doc, oids, graph)


def test_criss_cross_merges(doc) -> None:
    t = 1_700_000_000
    graph = [
        ([], t, 0),  # 0
        ([0], t + 1, 1),  # 1 left
        ([0], t + 1, 2),  # 2 right
        ([1, 2], t + 2, 1),  # 3 left merges right
        ([2, 1], t + 2, 2),  # 4 right merges left (criss-cross)
        ([3], t + 2, 0),  # 5 left
        ([4], t + 3, 0),  # 6 right
        ([5, 6], t + 3, 1),  # 7
        ([7, 4], t + 3, 2),  # 8 a merge of something already merged
    ]
    _check(doc, _build(doc.repo, graph), graph)


def test_bad_cursors(doc, author) -> None:
    oids = _commits(doc, author, 3)
    blob = str(doc.repo.create_blob(b"x"))
    for bad in ["zzz", oids[1][:12], f"{oids[1]}.", f"{oids[1]}..{oids[0]}", blob, "0" * 40,
                ".".join([oids[0]] * 501), oids[1].upper()]:  # fmt: skip
        with pytest.raises(InvalidCursor):
            doc.history("main", after=bad)
    # A cursor is a frontier: the commits the next page starts from.
    assert [c.oid for c in doc.history("main", after=oids[1]).commits] == [oids[1], oids[0]]


def test_deep_pages_cost_a_page(doc, author) -> None:
    """Page 6 of 301 commits walks the page and nothing before it."""
    oids = _commits(doc, author, 300)
    cursor = None
    for _ in range(5):
        cursor = doc.history("main", after=cursor, limit=50).next_cursor
    walk = HistoryWalk.from_cursor(doc.repo, cursor)
    page = [next(walk) for _ in range(50)]
    assert [str(c.id) for c in page] == list(reversed(oids))[250:300]
    assert len(walk.walked) == 50 and walk.cursor() == oids[0]


@_SETTINGS
@given(graph=histories(), skew=st.lists(st.integers(-5, 5), min_size=18, max_size=18))
def test_one_walk_shows_each_commit_once_even_when_clocks_ran_backwards(graph, skew) -> None:
    """Parents newer than their children: one page still lists every commit exactly once."""
    graph = [(parents, when + skew[i], v) for i, (parents, when, v) in enumerate(graph)]
    with tempfile.TemporaryDirectory() as tmp:
        repo = pygit2.init_repository(tmp, bare=True)
        doc = Document("skew", tmp)
        head = _build(repo, graph)[-1]
        whole = _unpaged(doc, head)
        assert len(whole) == len(set(whole)) and set(whole) == set(_rev_list(doc, head))
