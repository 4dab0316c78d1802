"""The repositories are ordinary Git: fsck-clean and cloneable by the real git CLI."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from gitstore import Author, Delete, Put, Rename

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git CLI not installed")


def _git(*args: str, cwd=None) -> str:
    env = {
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": "/nonexistent",
        "PATH": "/usr/bin:/bin:/usr/local/bin",
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout + done.stderr


def test_fsck_and_clone_after_workload(store, author, other, tmp_path) -> None:
    doc = store.create("fsck0001", author=author, content="# Doc\n\nline\n")
    h = doc.head("main")
    h = doc.write(
        "main",
        [Put("notes/Ünïcødé file.md", "ü\n"), Put("img.bin", b"\x00\xff")],
        parent=h,
        author=other,
        message="more",
        co_authors=[author],
    )
    h = doc.write(
        "main",
        [Rename("img.bin", "assets/img.bin"), Delete("notes/Ünïcødé file.md")],
        parent=h,
        author=author,
        message="tidy",
    )
    doc.create_branch("draft", "main")
    d = doc.write(
        "draft",
        [Put("document.md", "# Doc\n\nline\nextra\n")],
        parent=h,
        author=other,
        message="draft",
    )
    h = doc.save(
        "main", [Put("document.md", "# Doc!\n\nline\n")], parent=h, author=author, message="edit"
    ).commit
    h = doc.restore("main", d, parent=h, author=author)
    doc.create_tag("v1", "main", tagger=author, message="release")
    doc.delete_branch("draft")

    out = _git("fsck", "--strict", "--full", "--no-dangling", cwd=doc.path)
    assert "error" not in out.lower() and "warning" not in out.lower(), out

    clone = tmp_path / "clone"
    _git("clone", "--quiet", str(doc.path), str(clone))
    log = _git("log", "--format=%an%x09%ae", cwd=clone).splitlines()
    assert log == [
        "Ada Lovelace\tada@example.org",
        "Ada Lovelace\tada@example.org",
        "Ada Lovelace\tada@example.org",
        "Grace Hopper\tgrace@example.org",
        "Ada Lovelace\tada@example.org",
    ]
    assert (clone / "document.md").read_text() == "# Doc\n\nline\nextra\n"
    assert (clone / "assets" / "img.bin").read_bytes() == b"\x00\xff"
    assert "v1" in _git("tag", cwd=clone)
    assert Author("Ada Lovelace", "ada@example.org") == author
