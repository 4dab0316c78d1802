"""Releases: annotated tags with Markdown notes, read from Git, created and deleted here.

Git is the only record of a release: the tag's message is the notes, its tagger is
who made it. A tag pushed with git is therefore a release like any other, and no
row can disagree with the repository. Tags are immutable: creating an existing
name is refused, and only site admins may delete one (after typing its name).
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass
from typing import Any

import gitstore
from app import analytics
from app.accounts.models import User
from app.activity.services import record_ref_updates
from app.auth.permissions import Action, require
from app.documents import services as documents
from app.documents.models import Document
from app.documents.protection import is_valid_ref_name
from gitstore.archive import archive

TAG_PREFIX = "refs/tags/"
#: Longest release notes accepted (Markdown), in characters.
MAX_NOTES = 100_000


class ReleaseError(documents.DocumentError):
    """A user-caused problem with a release; ``code`` is the API's error code."""

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Release:
    """One tag as the releases page shows it, with what changed since the previous one."""

    tag: gitstore.TagInfo
    previous: gitstore.TagInfo | None
    files: list[gitstore.FileDiff]

    @property
    def name(self) -> str:
        return self.tag.name

    @property
    def notes(self) -> str:
        return (self.tag.message or "").strip()

    @property
    def additions(self) -> int:
        return sum(f.additions for f in self.files)

    @property
    def deletions(self) -> int:
        return sum(f.deletions for f in self.files)


def list_releases(document: Document) -> list[Release]:
    """Every tag of the document, newest first, each with its changes since the one before.

    Read from Git on every call, so tags pushed with git are included.
    """
    repo = documents.repo(document)
    tags = _sorted_tags(repo)
    out = []
    for index, tag in enumerate(tags):
        previous = tags[index + 1] if index + 1 < len(tags) else None
        files: list[gitstore.FileDiff] = []
        if previous is not None and previous.target != tag.target:
            files = repo.diff(previous.target, tag.target, word_level=False, context=0).files
        out.append(Release(tag=tag, previous=previous, files=files))
    return out


def _natural(name: str) -> tuple[tuple[int, int | str], ...]:
    """``v10`` after ``v9``: digit runs compare as numbers."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", name) if p)


def _newest_first(repo: gitstore.Document, tag: gitstore.TagInfo) -> tuple[Any, ...]:
    """Sort key: when tagged, then when the tagged version was made, then the name.

    Tag times have one-second resolution, so releases made in the same second are
    ordered by their versions' times and then by version-like names (v1.10 > v1.9).
    """
    committed = repo.commit(tag.target).committed_at.timestamp()
    tagged = tag.created_at.timestamp() if tag.created_at else committed
    return (tagged, committed, _natural(tag.name))


def _sorted_tags(repo: gitstore.Document) -> list[gitstore.TagInfo]:
    return sorted(repo.tags(), key=lambda t: _newest_first(repo, t), reverse=True)


def list_tags(document: Document) -> list[gitstore.TagInfo]:
    """Every tag, newest first, in the releases page's order."""
    return _sorted_tags(documents.repo(document))


def get_release(document: Document, name: str) -> Release | None:
    for release in list_releases(document):
        if release.name == name:
            return release
    return None


def _validate(tag: str, notes: str) -> tuple[str, str]:
    tag = (tag or "").strip()
    if not tag:
        raise ReleaseError("Give the release a tag name, e.g. v1.0.", "invalid")
    if not is_valid_ref_name(tag):
        raise ReleaseError(
            f"{tag!r} is not a valid tag name: use letters, digits, '.', '-', '_' and '/'.",
            "invalid_ref_name",
        )
    notes = (notes or "").replace("\r\n", "\n")
    if len(notes) > MAX_NOTES:
        raise ReleaseError(f"Release notes are limited to {MAX_NOTES} characters.", "invalid")
    return tag, notes


def create_release(actor: User, document: Document, tag: str, ref: str, notes: str) -> Release:
    """Tag ``ref`` (a branch, tag or commit id) as ``tag`` with ``notes``; the tagger is ``actor``.

    Raises :class:`ReleaseError` (code ``tag_exists``) if the tag exists: tags never move.
    """
    require(actor, Action.TAG_RELEASE, document)
    tag, notes = _validate(tag, notes)
    repo = documents.repo(document)
    refname = TAG_PREFIX + tag
    if repo.repo.references.get(refname) is not None:
        raise ReleaseError(
            f"A release named {tag!r} already exists; tags are never moved. Pick another name.",
            "tag_exists",
        )
    try:
        repo.create_tag(
            tag, ref or document.default_branch, tagger=documents.author_of(actor), message=notes
        )
    except gitstore.TagExists:
        raise ReleaseError(
            f"A release named {tag!r} already exists; tags are never moved.", "tag_exists"
        ) from None
    except gitstore.InvalidRefName:
        raise ReleaseError(f"{tag!r} is not a valid tag name.", "invalid_ref_name") from None
    except gitstore.RefNotFound:
        raise ReleaseError(
            f"There is no branch, tag or commit {ref!r} to release.", "unknown_ref"
        ) from None
    tag_object = str(repo.repo.references[refname].target)
    record_ref_updates(document, actor, [(refname, gitstore.ZERO_OID, tag_object)], source="web")
    analytics.track("release_tagged", {"document": document.slug}, user=actor)
    release = get_release(document, tag)
    if release is None:  # a site admin deleted it in the meantime
        raise gitstore.RefNotFound(f"no such release: {tag!r}")
    return release


def delete_release(actor: User, document: Document, tag: str, *, confirm: str) -> None:
    """Delete a tag: site admins only, and only when ``confirm`` repeats its name."""
    require(actor, Action.DELETE_RELEASE, document)
    repo = documents.repo(document)
    refname = TAG_PREFIX + tag
    # Look the name up among the repository's own tags: tags pushed or made outside
    # Quire may use characters our naming rule refuses, and can still be deleted.
    if not any(t.name == tag for t in repo.tags()):
        raise gitstore.RefNotFound(f"no such release: {tag!r}")
    if confirm.strip() != tag:
        raise ReleaseError("Type the tag name exactly to confirm the deletion.", "confirm")
    try:
        old = repo.delete_tag(tag)
    except gitstore.RefConflict:
        raise ReleaseError(
            f"The release {tag!r} changed while it was being deleted; nothing was deleted.",
            "conflict",
        ) from None
    record_ref_updates(document, actor, [(refname, old, gitstore.ZERO_OID)], source="web")


# --- downloads ----------------------------------------------------------------------


def main_file(repo: gitstore.Document, commit: str) -> str | None:
    """The document's main file at ``commit``: document.md, else the first Markdown file."""
    files = [f.path for f in repo.list_files(commit)]
    if documents.DEFAULT_FILE in files:
        return documents.DEFAULT_FILE
    return next((p for p in files if p.endswith((".md", ".markdown"))), files[0] if files else None)


@dataclass(frozen=True)
class Download:
    filename: str
    content_type: str
    data: bytes


def _file_stem(document: Document, tag: str) -> str:
    """``<slug>-<tag>`` with only characters safe in a Content-Disposition filename.

    Git allows quotes and other odd characters in tag names made outside Quire.
    """
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{document.slug}-{tag}").strip("-.") or "release"


def markdown_download(document: Document, tag: str) -> Download:
    """The main file as of the release (raises RefNotFound/PathNotFound)."""
    repo = documents.repo(document)
    commit = repo.resolve(TAG_PREFIX + tag)
    path = main_file(repo, commit)
    if path is None:
        raise gitstore.PathNotFound(f"release {tag!r} has no files")
    content = repo.read(path, commit)
    suffix = path.rsplit("/", 1)[-1]
    name = f"{_file_stem(document, tag)}-{suffix}" if path != documents.DEFAULT_FILE else None
    mime = mimetypes.guess_type(path)[0] or "text/markdown"
    if mime.startswith("text/"):
        mime += "; charset=utf-8"
    return Download(name or f"{_file_stem(document, tag)}.md", mime, content.data)


def zip_download(document: Document, tag: str) -> Download:
    """The whole tree of the release, exactly as ``git archive --format=zip <tag>`` makes it."""
    repo = documents.repo(document)
    data = archive(repo, TAG_PREFIX + tag, "zip")
    return Download(f"{_file_stem(document, tag)}.zip", "application/zip", data)
