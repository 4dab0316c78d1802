"""History search for a phrase (``git log -S``) pages through merged branches.

The history: main and a side branch both add the phrase, then merge. Paging one hit at
a time must find every commit git's own ``log -S`` finds, in the order of one walk,
with no commit twice: a cursor that restarted at the last shown commit would lose the
side branch's commits that were not yet walked.
"""

from __future__ import annotations

import subprocess

import pygit2
import pytest

from gitstore import Document, InvalidCursor
from gitstore.pickaxe import phrase_changes


def _commit(repo: pygit2.Repository, parents: list[str], when: int, text: str, msg: str) -> str:
    builder = repo.TreeBuilder()
    builder.insert("doc.md", repo.create_blob(text.encode()), pygit2.GIT_FILEMODE_BLOB)
    sig = pygit2.Signature("Ada", "ada@example.org", when, 0)
    oid = repo.create_commit(
        None, sig, sig, msg, builder.write(), [pygit2.Oid(hex=p) for p in parents]
    )
    return str(oid)


def _history(doc: Document) -> dict[str, str]:
    repo = doc.repo
    t = 1_700_000_000
    c = {"root": _commit(repo, [], t, "start\n", "root")}
    c["main1"] = _commit(repo, [c["root"]], t + 10, "start\nheron one\n", "main adds")
    c["side1"] = _commit(repo, [c["root"]], t + 5, "start\nheron side\n", "side adds")
    c["side2"] = _commit(repo, [c["side1"]], t + 20, "start\nheron side heron\n", "side twice")
    c["main2"] = _commit(repo, [c["main1"]], t + 30, "start\nheron one\nmore\n", "unrelated")
    merged = "start\nheron one\nheron side heron\nmore\n"
    c["merge"] = _commit(repo, [c["main2"], c["side2"]], t + 40, merged, "merge side")
    c["main3"] = _commit(repo, [c["merge"]], t + 50, "start\nmore\n", "drop the herons")
    repo.references.create("refs/heads/main", c["main3"], force=True)
    return c


def test_paging_finds_what_git_log_s_finds(doc: Document) -> None:
    c = _history(doc)
    whole = phrase_changes(doc, "main", "heron", limit=50)
    assert whole.next_cursor is None
    names = {v: k for k, v in c.items()}
    assert [names[h.commit.oid] for h in whole.hits] == ["main3", "side2", "main1", "side1"]

    git = subprocess.run(
        ["git", "-C", str(doc.path), "log", "-S", "heron", "--format=%H", "main"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert sorted(git.stdout.split()) == sorted(h.commit.oid for h in whole.hits)

    paged: list[str] = []
    cursor = None
    while True:
        page = phrase_changes(doc, "main", "heron", after=cursor, limit=1)
        paged.extend(h.commit.oid for h in page.hits)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert paged == [h.commit.oid for h in whole.hits]


def test_a_bad_cursor_is_refused(doc: Document) -> None:
    _history(doc)
    with pytest.raises(InvalidCursor):
        phrase_changes(doc, "main", "heron", after="not-a-cursor")
