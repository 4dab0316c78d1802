"""Properties of merge_text, checked against the real ``git merge-file``.

1. Whenever Git merges three texts cleanly, merge_text gives Git's result.
2. Edits to disjoint, non-adjacent words of one paragraph always merge cleanly, with both.
3. A change only one side made is never lost: it is in the merged text or, when the
   merge conflicts, inside a conflict region.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gitstore import merge_text

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git CLI not installed")

_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent", "PATH": os.environ["PATH"]}
_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def git_merge_file(base: str, ours: str, theirs: str) -> str | None:
    """``git merge-file -p``: the merged text, or None when Git reports a conflict."""
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for name, text in (("ours", ours), ("base", base), ("theirs", theirs)):
            path = Path(tmp) / name
            path.write_bytes(text.encode("utf-8"))
            files.append(str(path))
        done = subprocess.run(
            ["git", "merge-file", "-p", *files], env=_ENV, capture_output=True, check=False
        )
    if done.returncode < 0 or done.returncode > 127:
        raise AssertionError(f"git merge-file failed: {done.stderr!r}")
    return done.stdout.decode("utf-8") if done.returncode == 0 else None


# ---------------------------------------------------------------- 1. Git agreement

# A small alphabet of lines makes repeated lines (ambiguous alignments) common, which is
# where two line-merge implementations would disagree.
_LINES = st.sampled_from(
    ["a\n", "b\n", "c\n", "\n", "The cat sat.\n", "It rained. We stayed in.\n", "}\n"]
)


@st.composite
def _edited(draw: st.DrawFn, base: list[str]) -> list[str]:
    lines = list(base)
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["insert", "delete", "replace"]))
        at = draw(st.integers(0, len(lines)))
        if kind == "insert" or at == len(lines):
            lines[at:at] = draw(st.lists(_LINES, min_size=1, max_size=2))
        elif kind == "delete":
            del lines[at]
        else:
            lines[at] = draw(_LINES)
    if lines and draw(st.booleans()) and draw(st.booleans()):
        lines[-1] = lines[-1].rstrip("\n")  # no newline at the end of the file
    return lines


@st.composite
def _three_texts(draw: st.DrawFn) -> tuple[str, str, str]:
    base = draw(st.lists(_LINES, max_size=8))
    return "".join(base), "".join(draw(_edited(base))), "".join(draw(_edited(base)))


@_SETTINGS
@given(_three_texts())
def test_clean_git_merges_are_reproduced_exactly(texts: tuple[str, str, str]) -> None:
    base, ours, theirs = texts
    expected = git_merge_file(base, ours, theirs)
    result = merge_text(base, ours, theirs)
    if expected is not None:
        assert result.clean
        assert result.text == expected


def test_the_git_oracle_reports_conflicts() -> None:
    """The oracle above must be able to say "conflict", or property 1 proves nothing."""
    assert git_merge_file("a\n", "b\n", "c\n") is None
    assert git_merge_file("a\nb\nc\n", "A\nb\nc\n", "a\nb\nC\n") == "A\nb\nC\n"


# ---------------------------------------------------------------- 2. disjoint words

_VOCAB = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far", "away", "home"]


@st.composite
def _disjoint_edits(draw: st.DrawFn) -> tuple[list[str], dict[int, str], dict[int, str]]:
    """A paragraph of words and two edit sets, each word edited by one side at most and
    every edited word of one side at least two words away from the other side's.

    An edit maps a word index to its replacement: a new word, "" (delete the word) or
    "word NEW" (insert a word after it).

    Words repeat, but never twice in a row: in "the the the" nothing in the texts says
    which "the" one side deleted, so whether that touches the other side's edit is a
    guess (Git has the same ambiguity with repeated lines).
    """
    drawn = draw(st.lists(st.sampled_from(_VOCAB), min_size=4, max_size=40))
    words = [w for i, w in enumerate(drawn) if i == 0 or w != drawn[i - 1]]
    assume(len(words) >= 4)
    # Sentence ends give the sentence pass something to split on.
    words = [w + "." if draw(st.integers(0, 5)) == 0 else w for w in words]
    positions = draw(st.lists(st.integers(0, len(words) - 1), unique=True, max_size=8))
    ours: dict[int, str] = {}
    theirs: dict[int, str] = {}
    for at in positions:
        side, other = (ours, theirs) if draw(st.booleans()) else (theirs, ours)
        if any(abs(at - k) < 2 for k in other):
            continue
        kind = draw(st.sampled_from(["replace", "delete", "insert"]))
        tag = "ours" if side is ours else "theirs"
        if kind == "replace":
            side[at] = f"{tag}{at}"
        elif kind == "delete":
            side[at] = ""
        else:
            side[at] = f"{words[at]} {tag}{at}"
    return words, ours, theirs


def _apply(words: list[str], edits: dict[int, str]) -> str:
    out = [edits.get(i, w) for i, w in enumerate(words)]
    return " ".join(w for w in out if w) + "\n"


@_SETTINGS
@given(_disjoint_edits())
def test_disjoint_word_edits_merge_cleanly(case) -> None:
    words, ours, theirs = case
    base = _apply(words, {})
    result = merge_text(base, _apply(words, ours), _apply(words, theirs))
    assert result.clean, result.conflicts
    expected = _apply(words, {**ours, **theirs})
    if len({w.rstrip(".") for w in words}) == len(words):
        assert result.text == expected
    else:
        # With a word used twice, "cat dog cat" minus one "cat" reads the same whichever
        # was deleted, so the merge may place a deletion elsewhere: the same words, in
        # the same numbers.
        assert sorted(result.text.split()) == sorted(expected.split())


def test_git_itself_conflicts_on_such_edits() -> None:
    """The case property 2 is about: one line, two sentences, one edit each."""
    base = "The cat sat. The dog ran far away.\n"
    ours = "The cat sat down. The dog ran far away.\n"
    theirs = "The cat sat. The dog ran home.\n"
    assert git_merge_file(base, ours, theirs) is None
    assert merge_text(base, ours, theirs).text == "The cat sat down. The dog ran home.\n"


# ---------------------------------------------------------------- 3. nothing lost


@st.composite
def _overlapping_edits(draw: st.DrawFn) -> tuple[list[str], list[str], list[str]]:
    """Unique base words w0..wn; each side deletes, replaces and inserts unique words,
    anywhere (the two sides' edits may overlap). Lines and sentences break at random."""
    n = draw(st.integers(1, 30))
    seps = draw(st.lists(st.sampled_from([" ", " ", " ", ". ", "\n"]), min_size=n, max_size=n))
    base = [f"w{i}{seps[i]}" for i in range(n)]

    def edit(tag: str) -> list[str]:
        out = list(base)
        for k in range(draw(st.integers(0, 5))):
            at = draw(st.integers(0, len(out)))
            kind = draw(st.sampled_from(["insert", "delete", "replace"]))
            new = f"{tag}{k}{draw(st.sampled_from([' ', '. ', chr(10)]))}"
            if kind == "insert" or at == len(out):
                out.insert(at, new)
            elif kind == "delete":
                del out[at]
            else:
                out[at] = new
        return out

    return base, edit("o"), edit("t")


def _names(tokens: list[str]) -> list[str]:
    return [t.strip(" .\n") for t in tokens]


def _words_of(text: str) -> list[str]:
    return [w for w in text.replace(".", " ").split() if w]


@_SETTINGS
@given(_overlapping_edits())
def test_no_change_of_one_side_is_lost(case) -> None:
    base_tokens, ours_tokens, theirs_tokens = case
    base_words, ours_words, theirs_words = (
        _names(t) for t in (base_tokens, ours_tokens, theirs_tokens)
    )
    result = merge_text("".join(base_tokens), "".join(ours_tokens), "".join(theirs_tokens))
    # Pieces are joined with spaces: a word cut by a region boundary must not fuse.
    clean_words = _words_of(" ".join(c for c in result.chunks if isinstance(c, str)))
    in_ours = _words_of(" ".join(r.ours for r in result.conflicts))
    in_theirs = _words_of(" ".join(r.theirs for r in result.conflicts))

    for word in ours_words:
        if word not in base_words:  # inserted by ours
            assert word in clean_words or word in in_ours, word
    for word in theirs_words:
        if word not in base_words:
            assert word in clean_words or word in in_theirs, word
    for word in base_words:
        deleted_by_ours = word not in ours_words
        deleted_by_theirs = word not in theirs_words
        if deleted_by_ours or deleted_by_theirs:
            # Whoever deleted it: it is not in the clean text (a conflict may still
            # show it on the side that kept it).
            assert word not in clean_words, word

    if result.clean:
        # Exactly: every kept base word and every inserted word once, in an order
        # consistent with both sides.
        kept = [w for w in base_words if w in ours_words and w in theirs_words]
        inserted = {w for w in ours_words + theirs_words if w not in base_words}
        assert sorted(clean_words) == sorted(kept + list(inserted))
        assert [w for w in clean_words if w in kept] == kept
        for side in (ours_words, theirs_words):
            mine = [w for w in clean_words if w in side]
            assert mine == [w for w in side if w in mine]
