"""diff(), commit_diff(), word_diff(), blame()."""

from __future__ import annotations

from gitstore import Delete, Put, Rename, WordSpan, word_diff

LONG = "The quick brown fox jumps over the lazy dog while the cat watches from the fence.\n"


def test_word_diff_function() -> None:
    spans = word_diff("hello big world", "hello small world")
    assert spans == [
        WordSpan("equal", "hello "),
        WordSpan("delete", "big"),
        WordSpan("insert", "small"),
        WordSpan("equal", " world"),
    ]
    assert word_diff("same", "same") == [WordSpan("equal", "same")]


def test_line_and_word_diff(doc, author) -> None:
    h0 = doc.write(
        "main",
        [Put("document.md", "intro\n" + LONG + "outro\n")],
        parent=doc.head("main"),
        author=author,
        message="a",
    )
    h1 = doc.write(
        "main",
        [Put("document.md", "intro\n" + LONG.replace("lazy", "sleepy") + "outro\n")],
        parent=h0,
        author=author,
        message="b",
    )
    diff = doc.diff(h0, h1)
    assert diff.old == h0 and diff.new == h1
    assert diff.additions == 1 and diff.deletions == 1
    (f,) = diff.files
    assert f.status == "modified" and f.path == "document.md" and not f.binary
    (hunk,) = f.hunks
    kinds = [line.kind for line in hunk.lines]
    assert kinds == ["context", "delete", "add", "context"]
    deleted, added = hunk.lines[1], hunk.lines[2]
    assert deleted.old_no == 2 and deleted.new_no is None and added.new_no == 2
    assert [s for s in deleted.words if s.kind != "equal"] == [WordSpan("delete", "lazy")]
    assert [s for s in added.words if s.kind != "equal"] == [WordSpan("insert", "sleepy")]
    assert "".join(s.text for s in added.words) == added.text
    assert hunk.lines[0].words is None
    assert doc.diff(h0, h1, word_level=False).files[0].hunks[0].lines[1].words is None
    assert doc.diff("main", "main").files == []


def test_rename_detection_and_paths_filter(doc, author) -> None:
    h0 = doc.write(
        "main",
        [Put("a.md", LONG * 10), Put("b.md", "b\n")],
        parent=doc.head("main"),
        author=author,
        message="x",
    )
    h1 = doc.write(
        "main",
        [Rename("a.md", "moved/a.md"), Delete("b.md"), Put("c.md", "c\n")],
        parent=h0,
        author=author,
        message="y",
    )
    files = {f.path: f for f in doc.diff(h0, h1).files}
    assert files["moved/a.md"].status == "renamed"
    assert files["moved/a.md"].old_path == "a.md"
    assert files["b.md"].status == "deleted" and files["b.md"].new_path is None
    assert files["c.md"].status == "added" and files["c.md"].old_path is None
    only = doc.diff(h0, h1, paths=["c.md"])
    assert [f.path for f in only.files] == ["c.md"]


def test_binary_diff(doc, author) -> None:
    h0 = doc.write(
        "main",
        [Put("pic.bin", b"\x00\x01\x02")],
        parent=doc.head("main"),
        author=author,
        message="x",
    )
    h1 = doc.write(
        "main", [Put("pic.bin", b"\x00\x09\x02\x03")], parent=h0, author=author, message="y"
    )
    (f,) = doc.diff(h0, h1).files
    assert f.binary and f.hunks == []


def test_commit_diff_root_and_child(doc, author) -> None:
    root = doc.head("main")
    d = doc.commit_diff(root)
    assert [f.status for f in d.files] == ["added"]
    assert d.additions == 3
    h1 = doc.write(
        "main", [Put("document.md", "# Title\n")], parent=root, author=author, message="trim"
    )
    d1 = doc.commit_diff(h1)
    assert d1.old == root and d1.new == h1 and d1.deletions == 2


def test_blame(doc, author, other) -> None:
    h0 = doc.write(
        "main",
        [Put("poem.md", "one\ntwo\nthree\n")],
        parent=doc.head("main"),
        author=author,
        message="a",
    )
    h1 = doc.write(
        "main", [Put("poem.md", "one\nTWO\nthree\nfour\n")], parent=h0, author=other, message="b"
    )
    lines = doc.blame("poem.md", "main")
    assert [(b.line_no, b.text, b.author.name) for b in lines] == [
        (1, "one", "Ada Lovelace"),
        (2, "TWO", "Grace Hopper"),
        (3, "three", "Ada Lovelace"),
        (4, "four", "Grace Hopper"),
    ]
    assert lines[0].commit == h0 and lines[1].commit == h1
    assert [b.text for b in doc.blame("poem.md", h0)] == ["one", "two", "three"]
