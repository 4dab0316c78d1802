"""The branch graph layout on real repositories: lanes, edges, merges, labels, pages."""

from __future__ import annotations

import pygit2
import pytest

from gitstore import Author, Document, Put
from gitstore.graph import MAX_GRAPH_PAGE, Segment, layout

AUTHOR = Author("Ada Lovelace", "ada@example.org")


def _commit(doc: Document, branch: str, text: str, message: str) -> str:
    return doc.write(
        branch, [Put("document.md", text)], parent=doc.head(branch), author=AUTHOR, message=message
    )


def _merge(doc: Document, into: str, other: str, message: str) -> str:
    """A real two-parent merge commit of ``other`` into ``into`` (content: ours + theirs)."""
    repo = doc.repo
    ours, theirs = repo[doc.head(into)], repo[doc.head(other)]
    builder = repo.TreeBuilder(ours.tree)
    merged = repo.create_blob(b"merged\n")
    builder.insert("document.md", merged, pygit2.GIT_FILEMODE_BLOB)
    sig = pygit2.Signature(AUTHOR.name, AUTHOR.email, ours.commit_time + 10, 0)
    oid = repo.create_commit(
        f"refs/heads/{into}", sig, sig, message, builder.write(), [ours.id, theirs.id]
    )
    return str(oid)


@pytest.fixture
def merged_history(doc: Document) -> dict[str, str]:
    """main: root - m1 ---------- merge
                     \\          /
    draft:            d1 - d2 -
    plus a side branch 'idea' from m1 that is never merged, and a tag on m1.
    """
    oids = {"root": doc.head("main")}
    oids["m1"] = _commit(doc, "main", "m1\n", "m1")
    doc.create_branch("draft", "main")
    doc.create_branch("idea", "main")
    oids["d1"] = _commit(doc, "draft", "d1\n", "d1")
    oids["d2"] = _commit(doc, "draft", "d2\n", "d2")
    oids["i1"] = _commit(doc, "idea", "i1\n", "i1")
    oids["m2"] = _commit(doc, "main", "m2\n", "m2")
    oids["merge"] = _merge(doc, "main", "draft", "Merge draft")
    doc.create_tag("v1", oids["m1"], tagger=AUTHOR, message="First")
    return oids


def test_merge_history_lanes_edges_and_parents(doc: Document, merged_history) -> None:
    page = layout(doc, limit=50)
    by_oid = {n.commit.oid: n for n in page.nodes}
    assert set(by_oid) == set(merged_history.values())
    assert [n.row for n in page.nodes] == list(range(len(page.nodes)))
    # Every commit is drawn above its parents.
    rows = {n.commit.oid: n.row for n in page.nodes}
    for node in page.nodes:
        assert all(rows[p] > node.row for p in node.commit.parents)
    merge = by_oid[merged_history["merge"]]
    assert merge.row == 0 and merge.lane == 0 and merge.is_merge
    assert merge.branches == ("main",)
    # A merge has one edge per parent: first parent stays in its lane, the other is a merge edge.
    assert [e.parent for e in merge.edges] == [merged_history["m2"], merged_history["d2"]]
    assert [e.is_merge for e in merge.edges] == [False, True]
    assert merge.edges[0].lane == 0 and merge.edges[1].lane > 0
    # The draft line runs in the lane the merge edge opened, and joins main at m1.
    d2, d1 = by_oid[merged_history["d2"]], by_oid[merged_history["d1"]]
    assert d2.lane == d1.lane == merge.edges[1].lane
    assert Segment(0, d2.lane, "merge") in by_oid[merged_history["m2"]].incoming or any(
        s.kind == "merge" and s.end == d2.lane for n in page.nodes for s in n.incoming
    )
    m1 = by_oid[merged_history["m1"]]
    assert m1.lane == 0 and m1.tags == ("v1",)
    # Main's and draft's lines end in m1; the idea line (in a lane of its own) joined
    # main's lane on an earlier row, so main keeps lane 0 all the way down.
    assert {s.start for s in m1.incoming if s.end == 0} == {0, d1.lane}
    idea = by_oid[merged_history["i1"]]
    assert idea.lane not in (0, d1.lane) and idea.edges[0].parent == merged_history["m1"]
    assert any(s.start == idea.lane and s.end == 0 for n in page.nodes for s in n.incoming)
    assert by_oid[merged_history["m2"]].edges[0].lane == 0
    assert page.lanes == 3
    root = by_oid[merged_history["root"]]
    assert root.edges == () and root.row == len(page.nodes) - 1
    assert page.outgoing == () and not page.has_more


def test_branch_heads_start_without_incoming_lines(doc: Document, merged_history) -> None:
    page = layout(doc)
    idea = next(n for n in page.nodes if n.branches == ("idea",))
    # Nothing above a branch head points at it: no segment ends in its lane at its row
    # except lines passing through other lanes.
    assert all(s.end != idea.lane or s.start == s.end != idea.lane for s in idea.incoming)
    assert not [s for s in idea.incoming if s.end == idea.lane]


def test_linear_history_is_one_lane(doc: Document) -> None:
    for i in range(5):
        _commit(doc, "main", f"v{i}\n", f"step {i}")
    page = layout(doc)
    assert page.lanes == 1
    assert {n.lane for n in page.nodes} == {0}
    assert [n.commit.summary for n in page.nodes][:2] == ["step 4", "step 3"]
    for node in page.nodes[1:]:
        assert node.incoming == (Segment(0, 0, "parent"),)


def test_pages_keep_lanes_and_carry_lines_across(doc: Document, merged_history) -> None:
    whole = layout(doc, limit=50)
    first = layout(doc, limit=3)
    second = layout(doc, offset=3, limit=3)
    assert first.has_more and second.offset == 3
    assert [(n.commit.oid, n.lane) for n in first.nodes + second.nodes] == [
        (n.commit.oid, n.lane) for n in whole.nodes[:6]
    ]
    # The lines leaving page one are the lines entering page two.
    assert first.outgoing == second.nodes[0].incoming
    assert second.nodes[0].row == 3
    assert layout(doc, offset=100).nodes == []


def test_page_size_is_bounded(doc: Document) -> None:
    assert layout(doc, limit=10**9).limit == MAX_GRAPH_PAGE
    assert layout(doc, limit=0).limit == 1


def test_default_branch_keeps_lane_zero(doc: Document) -> None:
    _commit(doc, "main", "m\n", "main work")
    doc.create_branch("newer", "main")
    newer = _commit(doc, "newer", "n\n", "newer work")  # the newest commit of all
    page = layout(doc)
    top, main_head = page.nodes[0], page.nodes[1]
    assert top.commit.oid == newer and top.branches == ("newer",)
    assert main_head.branches == ("main",) and main_head.lane == 0
    assert top.lane == 1
    # Nothing is drawn in lane 0 above the default branch's head; newer joins it there.
    assert top.incoming == ()
    assert main_head.incoming == (Segment(1, 0, "parent"),)
    assert {n.lane for n in page.nodes[1:]} == {0}
