"""save(): three-way merge when the branch moved under the editor."""

from __future__ import annotations

import pytest

from gitstore import MergeConflict, NothingToCommit, Put

BASE = "Para one.\n\nPara two.\n\nPara three.\n"


@pytest.fixture
def base(doc, author):
    return doc.write(
        "main", [Put("document.md", BASE)], parent=doc.head("main"), author=author, message="base"
    )


def test_save_without_movement_is_plain_commit(doc, author, base) -> None:
    result = doc.save(
        "main", [Put("document.md", BASE + "More.\n")], parent=base, author=author, message="s"
    )
    assert not result.merged
    assert doc.head("main") == result.commit
    assert doc.commit(result.commit).parents == (base,)


def test_save_merges_edits_in_different_paragraphs(doc, author, other, base) -> None:
    theirs = doc.write(
        "main",
        [Put("document.md", BASE.replace("Para one.", "Para ONE (other)."))],
        parent=base,
        author=other,
        message="other edit",
    )
    result = doc.save(
        "main",
        [Put("document.md", BASE.replace("Para three.", "Para THREE (mine)."))],
        parent=base,
        author=author,
        message="my edit",
    )
    assert result.merged
    info = doc.commit(result.commit)
    assert info.parents == (theirs,)
    assert info.summary == "my edit" and info.author == author
    text = doc.read("document.md", "main").text
    assert "Para ONE (other)." in text and "Para THREE (mine)." in text and "Para two." in text


def test_save_merges_different_files(doc, author, other, base) -> None:
    doc.write("main", [Put("other.md", "o")], parent=base, author=other, message="o")
    result = doc.save("main", [Put("mine.md", "m")], parent=base, author=author, message="m")
    assert result.merged
    assert {e.path for e in doc.list_files("main")} == {"document.md", "other.md", "mine.md"}


def test_save_conflict_on_same_line(doc, author, other, base) -> None:
    theirs_text = BASE.replace("Para two.", "Para two, says Grace.")
    mine_text = BASE.replace("Para two.", "Para two, says Ada.")
    head = doc.write(
        "main", [Put("document.md", theirs_text)], parent=base, author=other, message="g"
    )
    with pytest.raises(MergeConflict) as info:
        doc.save("main", [Put("document.md", mine_text)], parent=base, author=author, message="a")
    assert info.value.paths == ["document.md"]
    conflict = info.value.conflicts[0]
    assert conflict.base == BASE.encode()
    assert conflict.ours == theirs_text.encode()  # the branch head's version
    assert conflict.theirs == mine_text.encode()  # the caller's version
    assert doc.head("main") == head


def test_save_nothing_to_commit(doc, author, base) -> None:
    with pytest.raises(NothingToCommit):
        doc.save("main", [Put("document.md", BASE)], parent=base, author=author, message="same")
