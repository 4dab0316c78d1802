"""Store: document lifecycle and on-disk layout."""

from __future__ import annotations

import pygit2
import pytest

from gitstore import DocumentExists, DocumentNotFound, Store


def test_create_uses_sharded_bare_repo(store: Store, author) -> None:
    doc = store.create("abcdef12", author=author, content="hi\n")
    path = store.root / "ab" / "abcdef12.git"
    assert store.path_for("abcdef12") == path
    assert doc.path == path and path.is_dir()
    repo = pygit2.Repository(str(path))
    assert repo.is_bare
    assert repo.references["HEAD"].target == "refs/heads/main"
    assert not list((store.root / ".tmp").iterdir())  # nothing half-built left behind


def test_initial_commit_holds_document_md_on_main(store: Store, author) -> None:
    doc = store.create("abcdef12", author=author, content="# Hello\n")
    assert doc.default_branch == "main"
    head = doc.head("main")
    assert doc.read("document.md", "main").text == "# Hello\n"
    info = doc.commit(head)
    assert info.parents == ()
    assert info.summary == "Create document"
    assert info.author == author
    assert [e.path for e in doc.list_files("main")] == ["document.md"]


def test_exists_open_delete(store: Store, author) -> None:
    assert not store.exists("abcdef12")
    with pytest.raises(DocumentNotFound):
        store.open("abcdef12")
    store.create("abcdef12", author=author)
    assert store.exists("abcdef12")
    assert store.open("abcdef12").read("document.md", "main").data == b""
    with pytest.raises(DocumentExists):
        store.create("abcdef12", author=author)
    store.delete("abcdef12")
    assert not store.exists("abcdef12")
    assert not (store.root / "ab" / "abcdef12.git").exists()
    with pytest.raises(DocumentNotFound):
        store.delete("abcdef12")


@pytest.mark.parametrize("bad", ["short", "UPPERCASE1", "../../etc", "abc/defgh", "a" * 65, ""])
def test_invalid_ids(store: Store, bad: str) -> None:
    with pytest.raises(ValueError):
        store.path_for(bad)
    assert not store.exists(bad)
    with pytest.raises(DocumentNotFound):
        store.open(bad)


def test_create_custom_file_and_branch(store: Store, author) -> None:
    doc = store.create(
        "zz000000", author=author, content=b"\x00\x01", filename="a/b.bin", branch="trunk"
    )
    assert doc.default_branch == "trunk"
    assert doc.read("a/b.bin", "trunk").is_binary
