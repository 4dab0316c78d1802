"""history(), commit(): order, cursor pagination, path filter."""

from __future__ import annotations

import pytest

from gitstore import Put, RefNotFound


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
