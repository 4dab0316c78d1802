"""Conversions between pygit2 commits/signatures and our value types.

Kept apart from Document so history, blame and branches share one definition of
"who and when", including the Co-authored-by trailer convention.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone

import pygit2

from .types import Author, CommitInfo

_CO_AUTHOR = re.compile(r"^co-authored-by:\s*(?P<name>.*?)\s*<(?P<email>[^<>]*)>\s*$", re.I)


def signature(person: Author) -> pygit2.Signature:
    """A signature stamped now, in UTC (the server's zone is meaningless to readers)."""
    return pygit2.Signature(person.name, person.email, int(time.time()), 0)


def author_of(sig: pygit2.Signature) -> Author:
    return Author(name=sig.name, email=sig.email)


def when(sig: pygit2.Signature) -> datetime:
    """Timezone-aware datetime in the offset the signature was recorded with."""
    return datetime.fromtimestamp(sig.time, timezone(timedelta(minutes=sig.offset)))


def utc_when(sig: pygit2.Signature) -> datetime:
    return datetime.fromtimestamp(sig.time, UTC)


def build_message(message: str, co_authors: Sequence[Author] = ()) -> str:
    """Normalise a commit message and append Co-authored-by trailers after a blank line."""
    text = message.strip("\n").rstrip()
    if not text:
        text = "(no message)"
    if co_authors:
        trailers = "\n".join(f"Co-authored-by: {a.name} <{a.email}>" for a in co_authors)
        text = f"{text}\n\n{trailers}"
    return text + "\n"


def parse_co_authors(message: str) -> tuple[Author, ...]:
    """Co-authors from the trailer block (the last paragraph) of a commit message."""
    paragraphs = message.strip().split("\n\n")
    if len(paragraphs) < 2:
        return ()
    found = []
    for line in paragraphs[-1].splitlines():
        match = _CO_AUTHOR.match(line.strip())
        if match:
            found.append(Author(match["name"], match["email"]))
    return tuple(found)


def commit_info(commit: pygit2.Commit) -> CommitInfo:
    oid = str(commit.id)
    message = commit.message
    return CommitInfo(
        oid=oid,
        short=oid[:7],
        summary=message.split("\n", 1)[0].strip(),
        message=message,
        author=author_of(commit.author),
        authored_at=when(commit.author),
        committer=author_of(commit.committer),
        committed_at=when(commit.committer),
        parents=tuple(str(p) for p in commit.parent_ids),
        co_authors=parse_co_authors(message),
    )
