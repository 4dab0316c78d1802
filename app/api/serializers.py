"""Turning models and gitstore values into the API's JSON shapes.

The shapes here are a public, versioned interface (``/api/v1``): keys are only ever
added, never renamed or removed. Keeping them in one module means a view cannot
accidentally leak a column or a pygit2 object, and the OpenAPI schemas in
:mod:`app.api.openapi` have a single place to be checked against.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import gitstore
from app.accounts.models import User
from app.auth.permissions import Grant
from app.documents.models import Document

JSON = dict[str, Any]


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with an explicit offset; stored datetimes are always UTC-aware."""
    return None if value is None else value.isoformat()


def encode_bytes(data: bytes) -> tuple[str, str]:
    """Return ``(content, encoding)``: UTF-8 text when it is text, base64 otherwise.

    A NUL byte (Git's binary heuristic) or invalid UTF-8 means the bytes cannot
    survive a JSON string unchanged, so they travel base64-encoded.
    """
    if b"\0" not in data[:8000]:
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            pass
    return base64.b64encode(data).decode("ascii"), "base64"


def user_json(user: User) -> JSON:
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "is_admin": user.is_admin,
    }


def document_json(document: Document, base_url: str, grant: Grant | None = None) -> JSON:
    """The document object; ``id`` is the immutable ``repo_id`` (slugs can be renamed)."""
    body: JSON = {
        "id": document.repo_id,
        "slug": document.slug,
        "title": document.title,
        "visibility": document.visibility,
        "default_branch": document.default_branch,
        "clone_url": f"{base_url}/{document.slug}.git",
        "web_url": f"{base_url}/{document.slug}",
        "updated_at": iso(document.updated_at),
    }
    if grant is not None:
        body["role"] = grant.role.label
    return body


def author_json(author: gitstore.Author) -> JSON:
    return {"name": author.name, "email": author.email}


def file_json(content: gitstore.FileContent) -> JSON:
    text, encoding = encode_bytes(content.data)
    return {
        "path": content.path,
        "content": text,
        "encoding": encoding,
        "commit": content.commit,
        "blob": content.blob,
        "size": len(content.data),
    }


def tree_entry_json(entry: gitstore.TreeEntry) -> JSON:
    return {
        "name": entry.name,
        "path": entry.path,
        "kind": entry.kind,
        "size": entry.size,
        "oid": entry.oid,
    }


def commit_json(commit: gitstore.CommitInfo) -> JSON:
    return {
        "oid": commit.oid,
        "short": commit.short,
        "summary": commit.summary,
        "message": commit.message,
        "author": author_json(commit.author),
        "authored_at": iso(commit.authored_at),
        "committer": author_json(commit.committer),
        "committed_at": iso(commit.committed_at),
        "parents": list(commit.parents),
        "co_authors": [author_json(a) for a in commit.co_authors],
    }


def file_diff_json(diff: gitstore.FileDiff, *, hunks: bool) -> JSON:
    """One changed file; hunks only where asked (commit pages list files, diffs show lines)."""
    body: JSON = {
        "path": diff.path,
        "old_path": diff.old_path,
        "status": diff.status,
        "additions": diff.additions,
        "deletions": diff.deletions,
        "binary": diff.binary,
    }
    if hunks:
        body["hunks"] = [hunk_json(h) for h in diff.hunks]
    return body


def hunk_json(hunk: gitstore.Hunk) -> JSON:
    return {
        "header": hunk.header,
        "old_start": hunk.old_start,
        "old_lines": hunk.old_lines,
        "new_start": hunk.new_start,
        "new_lines": hunk.new_lines,
        "lines": [
            {
                "kind": line.kind,
                "old_no": line.old_no,
                "new_no": line.new_no,
                "text": line.text,
                "words": None
                if line.words is None
                else [{"kind": w.kind, "text": w.text} for w in line.words],
            }
            for line in hunk.lines
        ],
    }


def diff_json(diff: gitstore.Diff) -> JSON:
    return {
        "from": diff.old,
        "to": diff.new,
        "additions": diff.additions,
        "deletions": diff.deletions,
        "files": [file_diff_json(f, hunks=True) for f in diff.files],
    }


def branch_json(branch: gitstore.BranchInfo) -> JSON:
    return {
        "name": branch.name,
        "head": branch.head,
        "is_default": branch.is_default,
        "updated_at": iso(branch.updated_at),
    }


def conflict_json(conflict: gitstore.ConflictFile) -> JSON:
    """Both sides of a conflicted file, so a client can show them and let the user merge.

    ``ours`` is what the branch holds now, ``theirs`` what the client sent, ``base``
    the version the client started from; null where that side has no file.
    Binary sides are base64 (``encoding`` says which).
    """
    sides = {"base": conflict.base, "ours": conflict.ours, "theirs": conflict.theirs}
    binary = any(b"\0" in data[:8000] for data in sides.values() if data is not None)
    body: JSON = {"path": conflict.path, "encoding": "base64" if binary else "utf-8"}
    for name, data in sides.items():
        if data is None:
            body[name] = None
        elif binary:
            body[name] = base64.b64encode(data).decode("ascii")
        else:
            body[name] = data.decode("utf-8", errors="replace")
    return body
