"""maintain(): packing and the commit-graph on real repositories, with the git CLI.

The last test drives ``flask --app app repos maintain`` through the app fixture,
since that command is how maintenance reaches every document.
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest
from flask import Flask

from gitstore import Author, Document, DocumentNotFound, Put, Store, maintain
from gitstore.maintenance import count_objects


def _git(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True)


def _fsck_clean(path: Path) -> None:
    done = _git(path, "fsck", "--strict", "--no-progress")
    assert done.returncode == 0 and done.stdout == "" and "error" not in done.stderr, done


def _saves(doc: Document, author: Author, n: int, path: str = "document.md") -> list[str]:
    head = doc.head("main")
    oids = []
    for i in range(n):
        head = doc.write(
            "main", [Put(path, f"version {i}\n")], parent=head, author=author, message=f"v{i}"
        )
        oids.append(head)
    return oids


def _graph_files(path: Path) -> list[Path]:
    info = path / "objects" / "info"
    return [p for p in [info / "commit-graph", *info.glob("commit-graphs/*.graph")] if p.is_file()]


def test_after_300_saves_maintain_packs_and_writes_a_commit_graph(doc, author) -> None:
    _saves(doc, author, 300)
    history = [c.oid for c in doc.history("main", limit=500).commits]
    text = doc.read("document.md", "main").text
    before = count_objects(doc.path)
    assert before.loose >= 900 and before.packs == 0
    assert _graph_files(doc.path) == []

    result = maintain(doc.path)

    assert result.packed and result.commit_graph
    assert result.before == before
    assert result.after.loose < before.loose and result.after.loose == 0
    assert result.after.packs == 1 and result.after.in_pack >= before.loose
    assert _graph_files(doc.path)
    assert _git(doc.path, "commit-graph", "verify").returncode == 0
    _fsck_clean(doc.path)
    # The handle opened before packing still reads, and so does a new one.
    for handle in (doc, Document(doc.id, doc.path)):
        assert [c.oid for c in handle.history("main", limit=500).commits] == history
        assert handle.read("document.md", "main").text == text
        assert handle.read("document.md", history[150]).text == "version 149\n"
    # Writing goes on; the next run leaves the few new loose objects and rewrites the graph.
    new = _saves(doc, author, 2)
    again = maintain(doc.path)
    assert not again.packed and again.after.loose == again.before.loose > 0
    assert again.commit_graph
    listed = _git(doc.path, "rev-list", "--count", "main").stdout.strip()
    assert listed == str(len(history) + 2) and doc.history("main").commits[0].oid == new[-1]
    _fsck_clean(doc.path)


def test_young_unreachable_objects_survive(doc, author) -> None:
    """A save in flight writes objects before its ref moves: gc must not prune them."""
    orphan = str(doc.repo.create_blob(b"written by a save that has not committed yet\n"))
    _saves(doc, author, 100)
    assert maintain(doc.path, loose_limit=1).packed
    assert doc.repo.get(orphan) is not None
    assert _git(doc.path, "cat-file", "-e", orphan).returncode == 0


def test_maintain_while_saving(store: Store, author: Author) -> None:
    """Saves in another thread (its own repository handle) while maintenance runs."""
    doc = store.create("busy0001", author=author, content="start\n")
    _saves(doc, author, 60)
    done: list[str] = []
    failures: list[BaseException] = []

    def writer() -> None:
        try:
            done.extend(_saves(Document(doc.id, doc.path), author, 150, path="live.md"))
        except BaseException as exc:  # reported below
            failures.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    results = [maintain(doc.path, loose_limit=1)]
    while thread.is_alive() and len(results) < 40:  # gc over and over while saves go on
        results.append(maintain(doc.path, loose_limit=1))
    thread.join()
    # No save met a lock that gc held (packing refs would take refs/heads/main.lock).
    assert failures == [] and len(done) == 150
    assert all(r.packed for r in results)
    final = maintain(doc.path, loose_limit=1)
    assert final.after.loose == 0
    _fsck_clean(doc.path)
    oids = {c.oid for c in doc.history("main", limit=500).commits}
    assert set(done) <= oids and len(oids) == 1 + 60 + 150


def test_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(DocumentNotFound):
        maintain(tmp_path / "missing.git")
    (tmp_path / "plain").mkdir()
    with pytest.raises(DocumentNotFound):
        maintain(tmp_path / "plain")


def test_repos_maintain_command(app: Flask, accounts) -> None:
    from app.accounts.services import get_user_by_username
    from app.documents import services

    accounts.create("ada")
    with app.app_context():
        ada = get_user_by_username("ada")
        paths = {}
        for title in ("Alpha", "Beta"):
            document = services.create_document(ada, title)
            repo = services.repo(document)
            _saves(repo, Author("Ada", "ada@example.org"), 100)
            paths[document.slug] = repo.path
    runner = app.test_cli_runner()

    one = runner.invoke(args=["repos", "maintain", "--slug", "alpha"])
    assert one.exit_code == 0, one.output
    assert one.output.startswith("alpha\tpacked: ") and "beta" not in one.output
    assert count_objects(paths["alpha"]).loose == 0 and count_objects(paths["beta"]).loose > 0

    every = runner.invoke(args=["repos", "maintain"])
    assert every.exit_code == 0, every.output
    lines = every.output.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["alpha", "beta"]
    assert "left packs alone" in lines[0] and "packed" in lines[1]
    for path in paths.values():
        assert _graph_files(path) and count_objects(path).loose == 0
        _fsck_clean(path)

    missing = runner.invoke(args=["repos", "maintain", "--slug", "nope"])
    assert missing.exit_code == 1 and "no document with slug 'nope'" in missing.output
