"""write(): change sets, path safety and compare-and-swap."""

from __future__ import annotations

import threading

import pytest

from gitstore import (
    Delete,
    GitStoreError,
    InvalidPath,
    NothingToCommit,
    PathNotFound,
    Put,
    RefConflict,
    Rename,
)


def test_add_modify_delete_rename(doc, author) -> None:
    h0 = doc.head("main")
    h1 = doc.write("main", [Put("notes.md", "n\n")], parent=h0, author=author, message="add")
    assert doc.read("notes.md", h1).text == "n\n"
    h2 = doc.write("main", [Put("notes.md", "n2\n")], parent=h1, author=author, message="modify")
    assert doc.read("notes.md", h2).text == "n2\n"
    h3 = doc.write(
        "main", [Rename("notes.md", "dir/renamed.md")], parent=h2, author=author, message="mv"
    )
    assert doc.read("dir/renamed.md", h3).text == "n2\n"
    with pytest.raises(PathNotFound):
        doc.read("notes.md", h3)
    h4 = doc.write("main", [Delete("dir/renamed.md")], parent=h3, author=author, message="rm")
    assert [e.path for e in doc.list_files(h4)] == ["document.md"]
    assert [e.name for e in doc.list_tree(h4)] == ["document.md"]  # empty dir removed
    assert doc.commit(h4).parents == (h3,)


def test_multi_file_commit_is_one_commit(doc, author) -> None:
    h0 = doc.head("main")
    h1 = doc.write(
        "main",
        [Put("a.md", "a"), Put("b/c.md", "c"), Delete("document.md")],
        parent=h0,
        author=author,
        message="several",
    )
    assert doc.commit(h1).parents == (h0,)
    assert [e.path for e in doc.list_files(h1)] == ["a.md", "b/c.md"]


def test_binary_empty_large_unicode(doc, author) -> None:
    binary = bytes(range(256)) * 4 + b"\x00tail"
    big = b"0123456789abcdef" * (10 * 1024 * 1024 // 16)
    h = doc.write(
        "main",
        [
            Put("img/pic.png", binary),
            Put("empty.txt", b""),
            Put("big.bin", big),
            Put("notes/Ünïcødé file.md", "héllo wörld ✓\n"),
            Put("with space/a b.md", "spaces"),
        ],
        parent=doc.head("main"),
        author=author,
        message="assorted",
    )
    assert doc.read("img/pic.png", h).data == binary
    assert doc.read("img/pic.png", h).is_binary
    assert doc.read("empty.txt", h).data == b""
    assert doc.read("big.bin", h).data == big
    assert doc.read("notes/Ünïcødé file.md", h).text == "héllo wörld ✓\n"
    assert doc.read("with space/a b.md", h).text == "spaces"
    sizes = {e.path: e.size for e in doc.list_files(h)}
    assert sizes["big.bin"] == len(big) and sizes["empty.txt"] == 0


@pytest.mark.parametrize(
    "bad",
    [
        "../x",
        "/etc/passwd",
        ".git/config",
        "a/../../b",
        "a//b",
        "A/.GIT/x",
        "./a",
        "a/.",
        "",
        "a\\b",
        "a\x00b",
        ".git",
        "x/.Git ",
        "x" * 5000,
    ],
)
def test_path_traversal_refused(doc, author, bad: str) -> None:
    head = doc.head("main")
    for change in (Put(bad, "evil"), Delete(bad), Rename("document.md", bad)):
        with pytest.raises(InvalidPath):
            doc.write(
                "main", [Put("ok.md", "fine"), change], parent=head, author=author, message="x"
            )
    assert doc.head("main") == head


def test_missing_paths_and_collisions(doc, author) -> None:
    head = doc.head("main")
    with pytest.raises(PathNotFound):
        doc.write("main", [Rename("nope.md", "x.md")], parent=head, author=author, message="x")
    with pytest.raises(PathNotFound):
        doc.write("main", [Delete("nope.md")], parent=head, author=author, message="x")
    with pytest.raises(InvalidPath):  # a file cannot become a directory silently
        doc.write("main", [Put("document.md/x", "x")], parent=head, author=author, message="x")
    assert doc.head("main") == head


def test_nothing_to_commit(doc, author) -> None:
    head = doc.head("main")
    same = doc.read("document.md", head).data
    with pytest.raises(NothingToCommit):
        doc.write("main", [Put("document.md", same)], parent=head, author=author, message="noop")
    with pytest.raises(NothingToCommit):
        doc.write("main", [], parent=head, author=author, message="noop")
    assert issubclass(NothingToCommit, GitStoreError)


def test_stale_parent_is_refused(doc, author) -> None:
    h0 = doc.head("main")
    h1 = doc.write("main", [Put("a.md", "1")], parent=h0, author=author, message="one")
    with pytest.raises(RefConflict) as info:
        doc.write("main", [Put("a.md", "2")], parent=h0, author=author, message="stale")
    assert info.value.ref == "refs/heads/main"
    assert info.value.expected == h0 and info.value.actual == h1
    assert doc.head("main") == h1
    with pytest.raises(RefConflict):  # None means "create the branch", which exists
        doc.write("main", [Put("a.md", "3")], parent=None, author=author, message="x")
    with pytest.raises(GitStoreError):  # a branch name is not an oid: CAS cannot be bypassed
        doc.write("main", [Put("a.md", "3")], parent="main", author=author, message="x")
    assert doc.head("main") == h1


def test_parent_none_creates_branch(doc, author) -> None:
    oid = doc.write("fresh", [Put("x.md", "x")], parent=None, author=author, message="orphan")
    assert doc.head("fresh") == oid
    assert doc.commit(oid).parents == ()


def test_threads_racing_exactly_one_wins(store, author) -> None:
    store.create("race0001", author=author)
    head = store.open("race0001").head("main")
    barrier = threading.Barrier(8)
    results: list[str] = []
    errors: list[Exception] = []

    def worker(n: int) -> None:
        doc = store.open("race0001")  # one handle per thread
        barrier.wait()
        try:
            results.append(
                doc.write(
                    "main", [Put("f.md", f"{n}\n")], parent=head, author=author, message=f"w{n}"
                )
            )
        except Exception as exc:  # noqa: BLE001 - collected and checked below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 1
    assert len(errors) == 7 and all(isinstance(e, RefConflict) for e in errors)
    assert store.open("race0001").head("main") == results[0]


def test_committer_and_co_authors(doc, author, other) -> None:
    carol = type(author)("Carol", "carol@example.org")
    oid = doc.write(
        "main",
        [Put("a.md", "a")],
        parent=doc.head("main"),
        author=author,
        committer=other,
        message="Pair work\n\nBody text.",
        co_authors=[other, carol],
    )
    info = doc.commit(oid)
    assert info.author == author and info.committer == other
    assert info.co_authors == (other, carol)
    assert info.summary == "Pair work"
    assert info.message.endswith(
        "Body text.\n\nCo-authored-by: Grace Hopper <grace@example.org>\n"
        "Co-authored-by: Carol <carol@example.org>\n"
    )
    assert info.authored_at.tzinfo is not None


def test_libgit2_cas_failure_becomes_ref_conflict(store, author) -> None:
    """The window between our head check and the ref write is covered by libgit2's
    own compare-and-swap; a stale Reference must surface as RefConflict."""
    from gitstore.errors import translate

    store.create("race0002", author=author)
    first, second = store.open("race0002"), store.open("race0002")
    h0 = first.head("main")
    stale = first.repo.references.get("refs/heads/main")  # loaded at h0
    h1 = second.write("main", [Put("a.md", "a")], parent=h0, author=author, message="moved")
    with pytest.raises(RefConflict), translate(ref="refs/heads/main", expected=h0):
        stale.set_target(first.repo[h0].id)
    assert first.head("main") == h1
