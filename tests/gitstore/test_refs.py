"""restore(), revert(), branches and tags."""

from __future__ import annotations

import subprocess

import pytest

from gitstore import (
    BranchExists,
    CannotDeleteDefaultBranch,
    CannotRenameDefaultBranch,
    InvalidRefName,
    MergeConflict,
    NothingToCommit,
    Put,
    RefConflict,
    RefNotFound,
    TagExists,
)


def test_restore_makes_new_commit_with_old_tree(doc, author) -> None:
    v1 = doc.head("main")
    v2 = doc.write(
        "main",
        [Put("document.md", "two\n"), Put("x.md", "x")],
        parent=v1,
        author=author,
        message="2",
    )
    v3 = doc.write("main", [Put("document.md", "three\n")], parent=v2, author=author, message="3")
    restored = doc.restore("main", v1, parent=v3, author=author)
    assert doc.repo[restored].tree_id == doc.repo[v1].tree_id
    info = doc.commit(restored)
    assert info.parents == (v3,) and info.summary == f"Restore version {v1[:7]}"
    assert [c.oid for c in doc.history("main").commits] == [restored, v3, v2, v1]
    with pytest.raises(NothingToCommit):
        doc.restore("main", v1, parent=restored, author=author)
    with pytest.raises(RefConflict):
        doc.restore("main", v2, parent=v3, author=author, message="stale")


def test_revert(doc, author) -> None:
    v1 = doc.write(
        "main", [Put("a.md", "a\n")], parent=doc.head("main"), author=author, message="Add a"
    )
    v2 = doc.write("main", [Put("b.md", "b\n")], parent=v1, author=author, message="Add b")
    reverted = doc.revert("main", v1, parent=v2, author=author)
    assert [e.path for e in doc.list_files(reverted)] == ["b.md", "document.md"]
    info = doc.commit(reverted)
    assert info.message == f'Revert "Add a"\n\nThis reverts commit {v1}.\n'
    assert info.parents == (v2,)


def test_revert_conflict(doc, author) -> None:
    v1 = doc.write(
        "main", [Put("a.md", "one\n")], parent=doc.head("main"), author=author, message="1"
    )
    v2 = doc.write("main", [Put("a.md", "two\n")], parent=v1, author=author, message="2")
    v3 = doc.write("main", [Put("a.md", "three\n")], parent=v2, author=author, message="3")
    with pytest.raises(MergeConflict) as info:
        doc.revert("main", v2, parent=v3, author=author)
    assert info.value.paths == ["a.md"]
    assert info.value.conflicts[0].ours == b"three\n"
    assert doc.head("main") == v3


def test_branches(doc, author) -> None:
    main = doc.head("main")
    assert doc.create_branch("draft", "main") == main
    v = doc.write("draft", [Put("d.md", "d")], parent=main, author=author, message="d")
    doc.create_branch("feature/x", main)
    names = [b.name for b in doc.branches()]
    assert names[0] == "main" and set(names) == {"main", "draft", "feature/x"}
    info = {b.name: b for b in doc.branches()}
    assert info["main"].is_default and not info["draft"].is_default
    assert info["draft"].head == v and info["draft"].author == author
    with pytest.raises(BranchExists):
        doc.create_branch("draft", "main")
    for bad in ["bad name", "a..b", "x~1", "HEAD", "-x", "", "end.lock", "a//b"]:
        with pytest.raises(InvalidRefName):
            doc.create_branch(bad, "main")
    with pytest.raises(RefNotFound):
        doc.create_branch("ok", "no-such-ref")
    with pytest.raises(CannotDeleteDefaultBranch):
        doc.delete_branch("main")
    with pytest.raises(RefConflict):
        doc.delete_branch("draft", expected=main)
    doc.delete_branch("draft", expected=v)
    doc.delete_branch("feature/x")
    assert [b.name for b in doc.branches()] == ["main"]
    with pytest.raises(RefNotFound):
        doc.delete_branch("draft")


def test_tags(doc, author, other) -> None:
    v1 = doc.head("main")
    assert doc.create_tag("v1.0", "main", tagger=author, message="First release") == v1
    v2 = doc.write("main", [Put("a.md", "a")], parent=v1, author=author, message="2")
    doc.create_tag("v2.0", v2[:8], tagger=other, message="Second")
    doc.repo.create_reference_direct("refs/tags/light", doc.repo[v1].id, False)  # lightweight
    tags = {t.name: t for t in doc.tags()}
    assert set(tags) == {"v1.0", "v2.0", "light"}
    assert tags["v1.0"].target == v1 and tags["v1.0"].tagger == author
    assert tags["v1.0"].message.strip() == "First release"
    assert tags["v1.0"].created_at is not None
    assert tags["light"].message is None and tags["light"].tagger is None
    with pytest.raises(TagExists):
        doc.create_tag("v1.0", v2, tagger=author, message="move it")
    assert doc.resolve("v1.0") == v1  # never moved
    with pytest.raises(InvalidRefName):
        doc.create_tag("bad tag", "main", tagger=author, message="x")


def test_delete_tag_is_compare_and_swap(doc, author) -> None:
    v1 = doc.head("main")
    doc.create_tag("v1.0", "main", tagger=author, message="First")
    tag_object = str(doc.repo.references["refs/tags/v1.0"].target)
    assert tag_object != v1  # annotated: the ref holds the tag object, not the commit
    with pytest.raises(RefConflict) as info:
        doc.delete_tag("v1.0", expected=v1)
    assert info.value.actual == tag_object
    assert doc.resolve("v1.0") == v1  # still there
    assert doc.delete_tag("v1.0", expected=tag_object) == tag_object
    assert [t.name for t in doc.tags()] == []
    with pytest.raises(RefNotFound):
        doc.delete_tag("v1.0")
    for bad in ["", "a..b", "bad name", "x~1"]:
        with pytest.raises(InvalidRefName):
            doc.delete_tag(bad)
    # A lightweight tag, and one named outside Quire's rules (as a push could make it).
    doc.repo.create_reference_direct("refs/tags/light", doc.repo[v1].id, False)
    doc.repo.create_reference_direct("refs/tags/-odd", doc.repo[v1].id, False)
    assert doc.delete_tag("light") == v1
    assert doc.delete_tag("-odd", expected=v1) == v1
    assert doc.tags() == []
    # Branches are never reached through a tag name.
    with pytest.raises(RefNotFound):
        doc.delete_tag("main")
    assert doc.head("main") == v1


def test_delete_tag_refuses_a_replaced_tag(doc, author) -> None:
    """The tag is replaced (a forced push) after the caller read it: nothing is deleted."""
    v1 = doc.head("main")
    v2 = doc.write("main", [Put("a.md", "a")], parent=v1, author=author, message="2")
    doc.repo.create_reference_direct("refs/tags/v1", doc.repo[v1].id, False)
    subprocess.run(["git", "-C", str(doc.path), "update-ref", "refs/tags/v1", v2, v1], check=True)
    with pytest.raises(RefConflict):
        doc.delete_tag("v1", expected=v1)
    assert doc.resolve("v1") == v2


def test_rename_branch_compares_with_the_head_the_caller_read(doc, author) -> None:
    main = doc.head("main")
    doc.create_branch("draft", "main")
    moved = doc.write("draft", [Put("d.md", "d")], parent=main, author=author, message="d")
    with pytest.raises(RefConflict) as info:
        doc.rename_branch("draft", "final", expected=main)
    assert (info.value.expected, info.value.actual) == (main, moved)
    assert {b.name for b in doc.branches()} == {"main", "draft"}
    doc.rename_branch("draft", "final", expected=moved)
    assert doc.head("final") == moved
    with pytest.raises(CannotRenameDefaultBranch):
        doc.rename_branch("refs/heads/main", "trunk")
