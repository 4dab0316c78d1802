"""The collection of documents: where each repository lives and its whole-repo lifecycle.

Repositories are sharded by the first two characters of the id so no directory grows
to millions of entries. Creation and deletion go through a rename so a crash never
leaves a half-built or half-deleted repository at a document's path.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

import pygit2

from .changes import apply_changes, validate_changes
from .commits import build_message, signature
from .document import Document, _branch_ref
from .errors import DocumentExists, DocumentNotFound, translate
from .types import Author, Put

_DOC_ID = re.compile(r"[a-z0-9]{8,64}")


class Store:
    """All documents under one root directory."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    def path_for(self, doc_id: str) -> Path:
        """``root/ab/abcdef12.git``; ValueError for ids that could not be ours."""
        if not isinstance(doc_id, str) or not _DOC_ID.fullmatch(doc_id):
            raise ValueError(f"invalid document id: {doc_id!r}")
        return self.root / doc_id[:2] / f"{doc_id}.git"

    def _scratch(self, kind: str, doc_id: str) -> Path:
        """A unique path on the same filesystem as the repos, so rename() is atomic."""
        directory = self.root / kind
        directory.mkdir(parents=True, exist_ok=True)
        return directory / f"{doc_id}-{uuid.uuid4().hex}"

    def exists(self, doc_id: str) -> bool:
        try:
            return self.path_for(doc_id).is_dir()
        except ValueError:
            return False

    def open(self, doc_id: str) -> Document:
        """Open an existing document. A malformed id is reported as DocumentNotFound."""
        if not self.exists(doc_id):
            raise DocumentNotFound(f"no such document: {doc_id!r}")
        return Document(doc_id, self.path_for(doc_id))

    def create(
        self,
        doc_id: str,
        *,
        author: Author,
        content: bytes | str = "",
        filename: str = "document.md",
        message: str = "Create document",
        branch: str = "main",
    ) -> Document:
        """Create a bare repository whose ``branch`` holds one commit with ``filename``."""
        final = self.path_for(doc_id)
        refname = _branch_ref(branch)
        changes = validate_changes([Put(filename, content)])
        if final.exists():
            raise DocumentExists(f"document {doc_id!r} already exists")
        tmp = self._scratch(".tmp", doc_id)
        try:
            with translate():
                repo = pygit2.init_repository(str(tmp), bare=True, initial_head=branch)
                tree = apply_changes(repo, None, changes)
                sig = signature(author)
                repo.create_commit(refname, sig, sig, build_message(message), tree, [])
                repo.free()
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                # Fails if another creator got there first (the target is non-empty).
                os.rename(tmp, final)
            except OSError as exc:
                raise DocumentExists(f"document {doc_id!r} already exists") from exc
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return Document(doc_id, final)

    def delete(self, doc_id: str) -> None:
        """Remove a document: rename it out of sight first, then delete the files."""
        if not self.exists(doc_id):
            raise DocumentNotFound(f"no such document: {doc_id!r}")
        trash = self._scratch(".trash", doc_id)
        try:
            os.rename(self.path_for(doc_id), trash)
        except FileNotFoundError as exc:
            raise DocumentNotFound(f"no such document: {doc_id!r}") from exc
        shutil.rmtree(trash, ignore_errors=True)
