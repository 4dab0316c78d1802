"""Reading: ref resolution, files and tree listings."""

from __future__ import annotations

import pytest

from gitstore import Delete, InvalidPath, PathNotFound, Put, RefNotFound


def test_read_at_branch_tag_and_oids(doc, author) -> None:
    first = doc.head("main")
    doc.create_tag("v1", "main", tagger=author, message="first")
    second = doc.write(
        "main", [Put("document.md", "changed\n")], parent=first, author=author, message="edit"
    )
    assert doc.read("document.md", "main").commit == second
    assert doc.read("document.md", "v1").text == "# Title\n\nHello world.\n"
    assert doc.read("document.md", "refs/tags/v1").commit == first
    assert doc.read("document.md", first).commit == first
    assert doc.read("document.md", first[:7]).commit == first
    assert doc.read("document.md", "refs/heads/main").text == "changed\n"
    assert doc.resolve(second[:4]) == second


@pytest.mark.parametrize("ref", ["nope", "deadbeef", "", "main~1", "../x"])
def test_unknown_refs(doc, ref: str) -> None:
    with pytest.raises(RefNotFound):
        doc.read("document.md", ref)


def test_read_missing_and_invalid_paths(doc) -> None:
    with pytest.raises(PathNotFound):
        doc.read("missing.md", "main")
    with pytest.raises(InvalidPath):
        doc.read("../document.md", "main")
    with pytest.raises(KeyError):  # PathNotFound is a KeyError for callers that like that
        doc.read("missing.md", "main")


def test_list_tree_and_files(doc, author) -> None:
    head = doc.head("main")
    doc.write(
        "main",
        [Put("b.md", "b"), Put("z/deep/x.txt", "x"), Put("a/one.md", "1"), Put("a/two.md", "22")],
        parent=head,
        author=author,
        message="files",
    )
    root = doc.list_tree("main")
    assert [(e.name, e.kind) for e in root] == [
        ("a", "tree"),
        ("z", "tree"),
        ("b.md", "blob"),
        ("document.md", "blob"),
    ]
    sub = doc.list_tree("main", "a")
    assert [(e.path, e.size) for e in sub] == [("a/one.md", 1), ("a/two.md", 2)]
    assert [e.path for e in doc.list_files("main")] == [
        "a/one.md",
        "a/two.md",
        "b.md",
        "document.md",
        "z/deep/x.txt",
    ]
    with pytest.raises(PathNotFound):
        doc.list_tree("main", "nope")
    with pytest.raises(PathNotFound):
        doc.list_tree("main", "b.md")
    with pytest.raises(PathNotFound):
        doc.read("a", "main")
    doc.write("main", [Delete("a")], parent=doc.head("main"), author=author, message="rm dir")
    assert "a" not in [e.name for e in doc.list_tree("main")]
