"""Merging branches: prose-aware text merges, previews, the three merge styles, reverts
of merged ranges, and the branch operations merge requests rely on."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from gitstore import (
    BranchExists,
    CannotDeleteDefaultBranch,
    CannotRenameDefaultBranch,
    ConflictRegion,
    Delete,
    MergeConflict,
    NotFastForward,
    NothingToCommit,
    Put,
    RefConflict,
    RefNotFound,
    merge_text,
)

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git CLI not installed")

PARAGRAPH = (
    "Quire keeps every document in Git. Writers edit together in the browser. "
    "Reviewers approve changes before they are merged.\n"
)
OURS_SENTENCE = PARAGRAPH.replace("in Git.", "in its own Git repository.")
THEIRS_SENTENCE = PARAGRAPH.replace("approve changes", "approve or reject changes")


def _git(*args: str, cwd=None, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": "/nonexistent",
        "PATH": os.environ["PATH"],
        "GIT_AUTHOR_NAME": "Cli",
        "GIT_AUTHOR_EMAIL": "cli@example.org",
        "GIT_COMMITTER_NAME": "Cli",
        "GIT_COMMITTER_EMAIL": "cli@example.org",
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=check
    )


def _fsck(doc) -> None:
    out = _git("fsck", "--strict", "--full", "--no-dangling", cwd=doc.path)
    assert "error" not in (out.stdout + out.stderr).lower(), out


def _branches(doc, author, base_text, ours_text, theirs_text, path="document.md"):
    """main and draft diverged from one base commit: main = ours, draft = theirs."""
    base = doc.write(
        "main", [Put(path, base_text)], parent=doc.head("main"), author=author, message="base"
    )
    doc.create_branch("draft", base)
    ours = doc.write("main", [Put(path, ours_text)], parent=base, author=author, message="ours")
    theirs = doc.write(
        "draft", [Put(path, theirs_text)], parent=base, author=author, message="theirs"
    )
    return base, ours, theirs


# ---------------------------------------------------------------- merge_text


def test_merge_text_merges_different_sentences_of_one_line() -> None:
    result = merge_text(PARAGRAPH, OURS_SENTENCE, THEIRS_SENTENCE, path="document.md")
    assert result.clean and result.path == "document.md"
    assert result.text == (
        "Quire keeps every document in its own Git repository. Writers edit together in "
        "the browser. Reviewers approve or reject changes before they are merged.\n"
    )


def test_merge_text_keeps_the_same_word_changed_twice_as_one_region() -> None:
    result = merge_text("The cat sat.\n", "The dog sat.\n", "The cow sat.\n")
    assert not result.clean
    assert result.chunks == (
        "The ",
        ConflictRegion(index=0, base="cat", ours="dog", theirs="cow"),
        " sat.\n",
    )
    with pytest.raises(ValueError, match="conflicts"):
        _ = result.text


def test_merge_text_takes_a_clean_git_merge_as_is() -> None:
    base = "one\ntwo\nthree\n"
    result = merge_text(base, "ONE\ntwo\nthree\n", "one\ntwo\nTHREE\n")
    assert result.chunks == ("ONE\ntwo\nTHREE\n",)


def test_merge_text_identical_changes_are_not_conflicts() -> None:
    assert merge_text("a b c\n", "a B c\n", "a B c\n").text == "a B c\n"
    assert merge_text("a b c\n", "a b c\n", "a b C\n").text == "a b C\n"
    assert merge_text("a b c\n", "a x c\n", "a b c\n").text == "a x c\n"


def test_resolve_every_pick() -> None:
    result = merge_text(
        "The cat sat on the mat.\n", "The dog sat on the rug.\n", "The cow sat on the bed.\n"
    )
    assert [(r.ours, r.theirs) for r in result.conflicts] == [("dog", "cow"), ("rug", "bed")]
    assert result.resolve({0: "ours", 1: "theirs"}) == "The dog sat on the bed.\n"
    assert result.resolve({0: "both", 1: "ours"}) == "The dog cow sat on the rug.\n"
    edited = result.resolve({0: "edit", 1: "theirs"}, {0: "bird"})
    assert edited == "The bird sat on the bed.\n"


def test_resolve_refuses_missing_unknown_and_bad_picks() -> None:
    result = merge_text("a b c\n", "a x c\n", "a y c\n")
    with pytest.raises(ValueError, match="region 0"):
        result.resolve({})
    with pytest.raises(ValueError, match="region 3"):
        result.resolve({0: "ours", 3: "theirs"})
    with pytest.raises(ValueError, match="one of"):
        result.resolve({0: "mine"})
    with pytest.raises(ValueError, match="without text"):
        result.resolve({0: "edit"})


def test_both_keeps_whole_lines_on_their_own_lines() -> None:
    result = merge_text("", "first\n", "second\n")
    assert result.resolve({0: "both"}) == "first\nsecond\n"


def test_merge_text_never_drops_text_in_a_conflict() -> None:
    base = "Alpha beta gamma.\n"
    ours = "Alpha BETA gamma. Delta.\n"
    theirs = "Alpha bEtA gamma.\n"
    result = merge_text(base, ours, theirs)
    assert result.resolve({r.index: "ours" for r in result.conflicts}) == ours
    assert result.resolve({r.index: "theirs" for r in result.conflicts}).count("bEtA") == 1
    assert "Delta." in result.resolve({r.index: "theirs" for r in result.conflicts})


def test_full_stops_do_not_pull_an_edit_to_the_wrong_word() -> None:
    """Found by the property tests: with full stops as anchors, theirs' kept "w4" was
    paired with nothing and came back although ours deleted it."""
    result = merge_text("w0 w1 w2 w3 w4 w5. ", "o3 o2 w1 w2 w3 w5. ", "w1 w2 w3 t0. w4 ")
    clean = " ".join(c for c in result.chunks if isinstance(c, str))
    assert "w4" not in clean.split()
    assert result.resolve({r.index: "ours" for r in result.conflicts}) == "o3 o2 w1 w2 w3 w5. "


def test_punctuation_edits_merge_with_word_edits() -> None:
    result = merge_text("Hello, world. Bye.\n", "Hello world. Bye.\n", "Hello, world. Bye!\n")
    assert result.text == "Hello world. Bye!\n"


@needs_git
def test_a_rewrapped_document_merges_with_word_edits(tmp_path) -> None:
    """One side puts every sentence on its own line (Git sees every paragraph changed),
    the other edits words: Git conflicts, the word pass merges."""
    paragraphs = [
        f"Paragraph {i} opens here. It says something about topic {i}. It ends here."
        for i in range(60)
    ]
    base = "\n\n".join(paragraphs) + "\n"
    theirs = base.replace("topic 7.", "subject 7.").replace("topic 42.", "matter 42.")
    ours = base.replace(". ", ".\n")
    for name, text in (("base", base), ("ours", ours), ("theirs", theirs)):
        (tmp_path / name).write_text(text)
    git = _git(
        "merge-file", "-p", *(str(tmp_path / n) for n in ("ours", "base", "theirs")), check=False
    )
    assert git.returncode > 0  # Git: conflicts
    assert merge_text(base, ours, theirs).text == theirs.replace(". ", ".\n")


@pytest.mark.parametrize(
    ("base", "ours", "theirs", "merged"),
    [
        (  # CRLF line ends, no newline at the end
            "One two three.\r\nFour five six.",
            "One TWO three.\r\nFour five six.",
            "One two three.\r\nFour five SIX.",
            "One TWO three.\r\nFour five SIX.",
        ),
        (
            "Un été très chaud. Il pleut.",
            "Un été très froid. Il pleut.",
            "Un été très chaud. Il neige.",
            "Un été très froid. Il neige.",
        ),
        (
            "日本語の文。次の文。",
            "日本語の文章。次の文。",
            "日本語の文。次の文です。",
            "日本語の文章。次の文です。",
        ),
    ],
)
def test_merge_text_beyond_ascii_and_unix_lines(base, ours, theirs, merged) -> None:
    assert merge_text(base, ours, theirs).text == merged


# ---------------------------------------------------------------- acceptance: one paragraph


@needs_git
def test_git_conflicts_on_two_sentences_of_one_paragraph_but_quire_merges(
    doc, author, other, tmp_path
) -> None:
    base, ours, theirs = _branches(doc, author, PARAGRAPH, OURS_SENTENCE, THEIRS_SENTENCE)

    clone = tmp_path / "clone"
    _git("clone", "--quiet", str(doc.path), str(clone))
    _git("checkout", "--quiet", "main", cwd=clone)
    refused = _git("merge", "--no-edit", "origin/draft", cwd=clone, check=False)
    assert refused.returncode != 0
    assert "CONFLICT (content): Merge conflict in document.md" in refused.stdout

    preview = doc.preview_merge("main", "draft")
    assert preview.clean and not preview.fast_forward and preview.base == base
    head = doc.merge(
        "main",
        "draft",
        style="merge",
        expected_target=ours,
        author=other,
        message="Merge draft into main",
    )
    text = doc.read("document.md", "main").text
    assert "in its own Git repository." in text and "approve or reject changes" in text
    assert text == preview.file("document.md").text
    assert doc.commit(head).parents == (ours, theirs)
    _fsck(doc)


# ---------------------------------------------------------------- merge styles


@pytest.fixture
def diverged(doc, author):
    """main and draft each changed a different paragraph of document.md."""
    base_text = "First paragraph.\n\nSecond paragraph.\n"
    return _branches(
        doc,
        author,
        base_text,
        base_text.replace("First", "Main's first"),
        base_text.replace("Second", "Draft's second"),
    )


MERGED = "Main's first paragraph.\n\nDraft's second paragraph.\n"


def test_merge_style_makes_a_two_parent_commit(doc, author, other, diverged) -> None:
    _, ours, theirs = diverged
    head = doc.merge(
        "main",
        "draft",
        style="merge",
        expected_target=ours,
        author=other,
        message="Merge",
        co_authors=[author],
    )
    info = doc.commit(head)
    assert info.parents == (ours, theirs)
    assert info.author == other and info.co_authors == (author,)
    assert doc.head("main") == head and doc.head("draft") == theirs
    assert doc.read("document.md", head).text == MERGED
    _fsck(doc)


def test_merge_style_is_a_merge_commit_even_when_fast_forward_is_possible(doc, author) -> None:
    start = doc.head("main")
    doc.create_branch("draft", start)
    tip = doc.write("draft", [Put("x.md", "x")], parent=start, author=author, message="x")
    assert doc.preview_merge("main", "draft").fast_forward
    head = doc.merge(
        "main", "draft", style="merge", expected_target=start, author=author, message="m"
    )
    assert head != tip and doc.commit(head).parents == (start, tip)


def test_squash_makes_one_single_parent_commit(doc, author, diverged) -> None:
    _, ours, theirs = diverged
    head = doc.merge(
        "main", "draft", style="squash", expected_target=ours, author=author, message="Sq"
    )
    info = doc.commit(head)
    assert info.parents == (ours,) and info.summary == "Sq"
    assert doc.read("document.md", head).text == MERGED
    _fsck(doc)


def test_fast_forward_moves_the_target_to_the_source(doc, author) -> None:
    start = doc.head("main")
    doc.create_branch("draft", start)
    tip = doc.write("draft", [Put("x.md", "x")], parent=start, author=author, message="x")
    assert (
        doc.merge("main", "draft", style="ff", expected_target=start, author=author, message="")
        == tip
    )
    assert doc.head("main") == tip


def test_fast_forward_is_refused_when_the_target_moved_on(doc, author, diverged) -> None:
    _, ours, _ = diverged
    with pytest.raises(NotFastForward):
        doc.merge("main", "draft", style="ff", expected_target=ours, author=author, message="")
    assert doc.head("main") == ours


@pytest.mark.parametrize("style", ["merge", "squash", "ff"])
def test_every_style_refuses_a_stale_expected_target(doc, author, style) -> None:
    start = doc.head("main")
    doc.create_branch("draft", start)
    doc.write("draft", [Put("x.md", "x")], parent=start, author=author, message="x")
    moved = doc.write("main", [Put("y.md", "y")], parent=start, author=author, message="y")
    with pytest.raises(RefConflict):
        doc.merge("main", "draft", style=style, expected_target=start, author=author, message="m")
    assert doc.head("main") == moved


def test_merge_refuses_nothing_to_merge_and_unknown_styles(doc, author) -> None:
    start = doc.head("main")
    doc.create_branch("draft", start)
    with pytest.raises(NothingToCommit):
        doc.merge("main", "draft", style="merge", expected_target=start, author=author, message="m")
    preview = doc.preview_merge("main", "draft")
    assert preview.up_to_date and preview.clean and not preview.files
    with pytest.raises(ValueError, match="style"):
        doc.merge(
            "main", "draft", style="rebase", expected_target=start, author=author, message="m"
        )  # type: ignore[arg-type]
    with pytest.raises(RefNotFound):
        doc.merge("main", "nope", style="merge", expected_target=start, author=author, message="m")
    with pytest.raises(RefNotFound):
        doc.merge("nope", "draft", style="merge", expected_target=start, author=author, message="m")


def test_expected_target_must_be_a_commit_id(doc, author, diverged) -> None:
    with pytest.raises(RefNotFound):
        doc.merge(
            "main", "draft", style="merge", expected_target="main", author=author, message="m"
        )


# ---------------------------------------------------------------- conflicts and resolutions


def test_text_conflict_resolved_with_picks_and_edits(doc, author, other) -> None:
    base_text = "The cat sat on the mat.\n\nUntouched.\n"
    _, ours, theirs = _branches(
        doc,
        author,
        base_text,
        base_text.replace("cat", "dog").replace("mat", "rug"),
        base_text.replace("cat", "cow").replace("mat", "bed"),
    )
    preview = doc.preview_merge("main", "draft")
    assert preview.conflicts == ("document.md",) and not preview.clean
    file = preview.file("document.md")
    assert [(r.ours, r.theirs) for r in file.conflicts] == [("dog", "cow"), ("rug", "bed")]

    with pytest.raises(MergeConflict) as refused:
        doc.merge("main", "draft", style="merge", expected_target=ours, author=other, message="m")
    assert refused.value.paths == ["document.md"]
    assert refused.value.conflicts[0].ours == doc.read("document.md", ours).data
    assert doc.head("main") == ours

    resolved = file.resolve({0: "edit", 1: "theirs"}, {0: "bird"})
    head = doc.merge(
        "main",
        "draft",
        style="merge",
        expected_target=ours,
        author=other,
        message="Merge draft",
        resolutions={"document.md": resolved},
    )
    assert doc.commit(head).parents == (ours, theirs)
    assert doc.read("document.md", head).text == "The bird sat on the bed.\n\nUntouched.\n"
    _fsck(doc)


def test_resolution_for_a_clean_path_is_refused(doc, author, diverged) -> None:
    _, ours, _ = diverged
    with pytest.raises(ValueError, match="document.md"):
        doc.merge(
            "main",
            "draft",
            style="merge",
            expected_target=ours,
            author=author,
            message="m",
            resolutions={"document.md": "mine"},
        )
    assert doc.head("main") == ours


def test_binary_conflict(doc, author) -> None:
    start = doc.head("main")
    base = doc.write(
        "main", [Put("img.bin", b"\x00base")], parent=start, author=author, message="b"
    )
    doc.create_branch("draft", base)
    ours = doc.write("main", [Put("img.bin", b"\x00ours")], parent=base, author=author, message="o")
    doc.write("draft", [Put("img.bin", b"\x00theirs")], parent=base, author=author, message="t")
    preview = doc.preview_merge("main", "draft")
    assert preview.conflicts == ("img.bin",) and preview.file("img.bin") is None
    with pytest.raises(MergeConflict) as refused:
        doc.merge("main", "draft", style="squash", expected_target=ours, author=author, message="m")
    assert refused.value.conflicts[0].theirs == b"\x00theirs"
    head = doc.merge(
        "main",
        "draft",
        style="squash",
        expected_target=ours,
        author=author,
        message="m",
        resolutions={"img.bin": b"\x00both"},
    )
    assert doc.read("img.bin", head).data == b"\x00both"
    _fsck(doc)


def test_modify_delete_conflict(doc, author) -> None:
    start = doc.head("main")
    base = doc.write("main", [Put("notes.md", "notes\n")], parent=start, author=author, message="b")
    doc.create_branch("draft", base)
    ours = doc.write(
        "main", [Put("notes.md", "more notes\n")], parent=base, author=author, message="o"
    )
    doc.write("draft", [Delete("notes.md")], parent=base, author=author, message="t")
    preview = doc.preview_merge("main", "draft")
    assert preview.conflicts == ("notes.md",) and preview.file("notes.md") is None
    with pytest.raises(MergeConflict) as refused:
        doc.merge("main", "draft", style="merge", expected_target=ours, author=author, message="m")
    assert refused.value.conflicts[0].theirs is None
    head = doc.merge(
        "main",
        "draft",
        style="merge",
        expected_target=ours,
        author=author,
        message="m",
        resolutions={"notes.md": None},  # agree with the deletion
    )
    assert "notes.md" not in {e.path for e in doc.list_files(head)}
    _fsck(doc)


def test_add_add_conflict_is_a_text_conflict(doc, author) -> None:
    start = doc.head("main")
    doc.create_branch("draft", start)
    ours = doc.write(
        "main", [Put("new.md", "Main's text.\n")], parent=start, author=author, message="o"
    )
    doc.write("draft", [Put("new.md", "Draft's text.\n")], parent=start, author=author, message="t")
    preview = doc.preview_merge("main", "draft")
    assert preview.conflicts == ("new.md",)
    [region] = preview.file("new.md").conflicts
    assert region.base == ""
    text = preview.file("new.md").resolve({0: "both"})
    assert "Main's" in text and "Draft's" in text
    head = doc.merge(
        "main",
        "draft",
        style="merge",
        expected_target=ours,
        author=author,
        message="m",
        resolutions={"new.md": text},
    )
    assert doc.read("new.md", head).text == text


def test_preview_lists_clean_files_changed_on_both_sides(doc, author, diverged) -> None:
    preview = doc.preview_merge("main", "draft")
    assert preview.clean and [f.path for f in preview.files] == ["document.md"]
    assert preview.file("document.md").text == MERGED


# ---------------------------------------------------------------- revert_range


@pytest.mark.parametrize("style", ["merge", "squash", "ff"])
def test_revert_range_undoes_a_merge_of_every_style(doc, author, other, style) -> None:
    start = doc.head("main")
    doc.create_branch("draft", start)
    doc.write(
        "draft", [Put("draft.md", "from the draft\n")], parent=start, author=author, message="d"
    )
    if style != "ff":
        start = doc.write(
            "main", [Put("main.md", "main\n")], parent=start, author=author, message="m"
        )
    merged = doc.merge(
        "main", "draft", style=style, expected_target=start, author=author, message="M"
    )
    later = doc.write(
        "main", [Put("later.md", "later\n")], parent=merged, author=other, message="l"
    )

    head = doc.revert_range("main", start, merged, parent=later, author=other, message="Revert M")
    files = {e.path for e in doc.list_files(head)}
    assert "draft.md" not in files and "later.md" in files
    assert doc.commit(head).parents == (later,) and doc.commit(head).summary == "Revert M"
    _fsck(doc)


def test_revert_range_conflicts_with_later_overlapping_edits(doc, author) -> None:
    start = doc.head("main")
    doc.create_branch("draft", start)
    doc.write(
        "draft", [Put("document.md", "The cat sat.\n")], parent=start, author=author, message="d"
    )
    merged = doc.merge(
        "main", "draft", style="squash", expected_target=start, author=author, message="M"
    )
    later = doc.write(
        "main", [Put("document.md", "The dog sat.\n")], parent=merged, author=author, message="l"
    )
    with pytest.raises(MergeConflict):
        doc.revert_range("main", start, merged, parent=later, author=author, message="r")
    with pytest.raises(RefConflict):
        doc.revert_range("main", start, merged, parent=merged, author=author, message="r")
    assert doc.head("main") == later


def test_revert_range_keeps_a_later_edit_to_another_sentence(doc, author) -> None:
    start = doc.write(
        "main", [Put("document.md", PARAGRAPH)], parent=doc.head("main"), author=author, message="p"
    )
    doc.create_branch("draft", start)
    doc.write(
        "draft", [Put("document.md", OURS_SENTENCE)], parent=start, author=author, message="d"
    )
    merged = doc.merge(
        "main", "draft", style="merge", expected_target=start, author=author, message="M"
    )
    later = doc.write(
        "main",
        [Put("document.md", OURS_SENTENCE.replace("approve", "accept"))],
        parent=merged,
        author=author,
        message="later edit, same line",
    )
    head = doc.revert_range("main", start, merged, parent=later, author=author, message="r")
    assert doc.read("document.md", head).text == PARAGRAPH.replace("approve", "accept")


def test_revert_range_of_nothing_is_refused(doc, author) -> None:
    start = doc.head("main")
    with pytest.raises(NothingToCommit):
        doc.revert_range("main", start, start, parent=start, author=author, message="r")


# ---------------------------------------------------------------- branches between


def test_merge_base_ahead_behind_and_commits_between(doc, author, diverged) -> None:
    base, ours, theirs = diverged
    assert doc.merge_base("main", "draft") == base
    assert doc.merge_base(ours, theirs) == base
    assert doc.ahead_behind("draft", "main") == (1, 1)
    t2 = doc.write("draft", [Put("b.md", "b")], parent=theirs, author=author, message="second")
    assert doc.ahead_behind("draft", "main") == (2, 1)
    assert doc.ahead_behind("main", "draft") == (1, 2)
    commits = doc.commits_between("main", "draft")
    assert [c.oid for c in commits] == [t2, theirs]
    assert [c.oid for c in doc.commits_between("main", "draft", limit=1)] == [t2]
    assert doc.commits_between("draft", "draft") == []
    with pytest.raises(RefNotFound):
        doc.ahead_behind("nope", "main")


def test_merge_base_of_unrelated_histories_is_none(doc, author) -> None:
    orphan = doc.write("orphan", [Put("o.md", "o")], parent=None, author=author, message="o")
    assert doc.merge_base("main", orphan) is None
    preview = doc.preview_merge("main", "orphan")
    assert preview.base is None and not preview.fast_forward and preview.clean


def test_rename_branch(doc, author) -> None:
    start = doc.head("main")
    doc.create_branch("draft", start)
    tip = doc.write("draft", [Put("x.md", "x")], parent=start, author=author, message="x")
    doc.rename_branch("draft", "chapter-2")
    assert doc.head("chapter-2") == tip
    with pytest.raises(RefNotFound):
        doc.head("draft")
    _fsck(doc)


def test_rename_branch_refusals(doc, author) -> None:
    start = doc.head("main")
    doc.create_branch("a", start)
    b = doc.write("b", [Put("b.md", "b")], parent=None, author=author, message="b")
    with pytest.raises(CannotRenameDefaultBranch):
        doc.rename_branch("main", "trunk")
    with pytest.raises(CannotDeleteDefaultBranch):  # the same family of refusal
        doc.rename_branch("main", "trunk")
    with pytest.raises(BranchExists):
        doc.rename_branch("a", "b")
    with pytest.raises(RefNotFound):
        doc.rename_branch("missing", "c")
    assert doc.head("a") == start and doc.head("b") == b and doc.head("main") == start


@needs_git
def test_renamed_branch_is_what_git_sees(doc, author, tmp_path) -> None:
    start = doc.head("main")
    doc.create_branch("draft", start)
    doc.rename_branch("draft", "final")
    heads = _git("for-each-ref", "--format=%(refname)", "refs/heads", cwd=doc.path).stdout.split()
    assert heads == ["refs/heads/final", "refs/heads/main"]


# ---------------------------------------------------------------- save() uses the same merge


def test_stale_save_merges_different_sentences_of_one_paragraph(doc, author, other) -> None:
    base = doc.write(
        "main", [Put("document.md", PARAGRAPH)], parent=doc.head("main"), author=author, message="p"
    )
    theirs = doc.write(
        "main", [Put("document.md", THEIRS_SENTENCE)], parent=base, author=other, message="t"
    )
    result = doc.save(
        "main", [Put("document.md", OURS_SENTENCE)], parent=base, author=author, message="mine"
    )
    assert result.merged and doc.commit(result.commit).parents == (theirs,)
    text = doc.read("document.md", "main").text
    assert "in its own Git repository." in text and "approve or reject changes" in text


def test_stale_save_still_conflicts_on_the_same_word(doc, author, other) -> None:
    base = doc.write(
        "main", [Put("document.md", PARAGRAPH)], parent=doc.head("main"), author=author, message="p"
    )
    theirs = doc.write(
        "main",
        [Put("document.md", PARAGRAPH.replace("Writers", "Authors"))],
        parent=base,
        author=other,
        message="t",
    )
    with pytest.raises(MergeConflict) as refused:
        doc.save(
            "main",
            [Put("document.md", PARAGRAPH.replace("Writers", "Editors"))],
            parent=base,
            author=author,
            message="mine",
        )
    [conflict] = refused.value.conflicts
    assert b"Authors" in conflict.ours and b"Editors" in conflict.theirs
    assert conflict.base == PARAGRAPH.encode()
    assert doc.head("main") == theirs


def test_rename_branch_is_refused_while_another_writer_holds_a_ref(doc) -> None:
    start = doc.head("main")
    doc.create_branch("draft", start)
    for locked in ("draft", "final"):
        lock = doc.path / "refs" / "heads" / f"{locked}.lock"
        lock.write_text("")
        try:
            with pytest.raises(RefConflict):
                doc.rename_branch("draft", "final")
        finally:
            lock.unlink()
        assert doc.head("draft") == start
        with pytest.raises(RefNotFound):
            doc.head("final")
    doc.rename_branch("draft", "final")
    assert doc.head("final") == start
