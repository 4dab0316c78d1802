"""normalize_path(): the single gate every caller-supplied path passes."""

from __future__ import annotations

import pytest

from gitstore import Document, InvalidPath, normalize_path, word_diff


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a.md", "a.md"),
        ("notes/Ünïcødé file.md", "notes/Ünïcødé file.md"),
        ("dir/", "dir"),
        (".gitignore", ".gitignore"),
        ("a/.github/x", "a/.github/x"),
        ("..hidden", "..hidden"),
    ],
)
def test_accepted(raw: str, expected: str) -> None:
    assert normalize_path(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "../x",
        "/etc/passwd",
        ".git/config",
        "a/../../b",
        "a//b",
        "A/.GIT/x",
        "git~1/x",
        "\u200c.git/x",
        "a\nb",
    ],
)
def test_refused(raw: str) -> None:
    with pytest.raises(InvalidPath):
        normalize_path(raw)


def test_root_only_where_allowed() -> None:
    assert normalize_path("", allow_root=True) == ""
    with pytest.raises(InvalidPath):
        normalize_path("")


def test_word_diff_is_also_on_document() -> None:
    assert Document.word_diff("a b", "a c") == word_diff("a b", "a c")
