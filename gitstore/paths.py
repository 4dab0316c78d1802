"""Validation of in-repository paths.

Every path that comes from a caller passes through here before it touches a tree, so a
crafted path can never escape the document, create a '.git' entry (which would make a
clone dangerous), or produce a tree Git's fsck rejects.
"""

from __future__ import annotations

from .errors import InvalidPath

MAX_PATH = 4096


# Characters HFS+ ignores when comparing names; "\u200c.git" is ".git" on a Mac.
_HFS_IGNORABLE = dict.fromkeys(
    [*range(0x200C, 0x2010), *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF]
)


def _is_dotgit(segment: str) -> bool:
    """True for '.git' and the spellings Windows/macOS treat as '.git' (as git fsck does)."""
    folded = segment.translate(_HFS_IGNORABLE).lower()
    return folded.rstrip(". ") == ".git" or folded.rstrip(". ") == "git~1"


def normalize_path(path: str, *, allow_root: bool = False) -> str:
    """Return ``path`` as a forward-slash relative path, or raise InvalidPath.

    ``allow_root`` lets directory listings accept "" (the top of the tree).
    """
    if not isinstance(path, str):
        raise InvalidPath(f"path must be a string, not {type(path).__name__}")
    if path == "" and allow_root:
        return ""
    if not path:
        raise InvalidPath("empty path")
    if len(path) > MAX_PATH:
        raise InvalidPath("path too long")
    if "\0" in path:
        raise InvalidPath("NUL byte in path")
    if "\\" in path:
        raise InvalidPath("backslash in path")
    if path.startswith("/"):
        raise InvalidPath("absolute path")
    # A single trailing slash on a directory ("notes/") is harmless; strip it.
    stripped = path[:-1] if path.endswith("/") and len(path) > 1 else path
    for segment in stripped.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidPath(f"bad segment {segment!r} in {path!r}")
        if _is_dotgit(segment):
            raise InvalidPath(f".git segment in {path!r}")
        if any(ord(ch) < 0x20 for ch in segment):
            raise InvalidPath(f"control character in {path!r}")
    return stripped
