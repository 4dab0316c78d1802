"""Whole-tree downloads of a version, made by ``git archive`` itself.

A release's ``.zip`` must be byte-for-byte what a user gets from ``git archive`` on
their own clone (same names, same contents, same attributes such as
``export-ignore``), so we run git rather than re-implementing the format.
"""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING, Literal

from .errors import GitStoreError, RefNotFound

if TYPE_CHECKING:
    from .document import Document

__all__ = ["ARCHIVE_FORMATS", "ArchiveError", "archive"]

ARCHIVE_FORMATS = ("zip", "tar", "tar.gz")
#: git archive on a document repository is quick; this only stops a stuck process.
_TIMEOUT_SECONDS = 120


class ArchiveError(GitStoreError):
    """``git archive`` failed for a reason other than an unknown version."""


def _environment() -> dict[str, str]:
    """A clean environment: no inherited GIT_DIR/GIT_* variables, no user config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    env["GIT_CONFIG_GLOBAL"] = os.devnull
    env["GIT_TERMINAL_PROMPT"] = "0"
    return env


def archive(document: Document, ref: str, fmt: Literal["zip", "tar", "tar.gz"] = "zip") -> bytes:
    """The tree of ``ref`` (a branch, tag or commit id) as a ``zip``/``tar``/``tar.gz``.

    Tags are archived by their full ref name, so the archive is exactly what
    ``git archive --format=zip <tag>`` gives on a clone. Raises RefNotFound for an
    unknown version.
    """
    if fmt not in ARCHIVE_FORMATS:
        raise ValueError(f"unknown archive format {fmt!r}")
    document.resolve(ref)  # RefNotFound for anything that is not a version
    # Hand git an unambiguous name: a full ref, or the commit id when given one.
    treeish = ref
    if not ref.startswith("refs/"):
        for candidate in (f"refs/tags/{ref}", f"refs/heads/{ref}"):
            if document.repo.references.get(candidate) is not None:
                treeish = candidate
                break
        else:
            treeish = document.resolve(ref)
    command = ["git", f"--git-dir={document.path}", "archive", f"--format={fmt}", treeish]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            env=_environment(),
            timeout=_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ArchiveError(f"git archive failed: {exc}") from exc
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()
        if "not a valid object name" in message or "not a tree object" in message:
            raise RefNotFound(f"unknown revision: {ref!r}")
        raise ArchiveError(f"git archive failed: {message}")
    return done.stdout
