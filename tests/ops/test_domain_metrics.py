"""Domain metrics under a real gunicorn: git clone/push and a live session are counted.

The server and the node y-websocket agents are the live tests' (``tests/live/conftest``);
git is the real CLI, authenticated with a personal access token as users do.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.live.conftest import Server, agents, node_client, server  # noqa: F401
from tests.ops.test_metrics import sample

pytestmark = pytest.mark.slow


def _scrape(server: Server) -> str:  # noqa: F811
    with urllib.request.urlopen(server.base_url + "/metrics", timeout=10) as response:
        return response.read().decode()


def _children(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()


def _git(*args: str, cwd: Path) -> None:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}
    env.update(GIT_AUTHOR_NAME="ada", GIT_AUTHOR_EMAIL="ada@example.com")
    env.update(GIT_COMMITTER_NAME="ada", GIT_COMMITTER_EMAIL="ada@example.com")
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_git_and_live_metrics(server, agents, tmp_path: Path) -> None:  # noqa: F811
    ada = server.user("ada")
    slug = server.api("POST", "/documents", ada, {"title": "Metrics", "visibility": "private"})[
        "slug"
    ]
    host = server.base_url.removeprefix("http://")
    work = tmp_path / "clone"
    _git("clone", f"http://ada:{ada}@{host}/{slug}.git", str(work), cwd=tmp_path)
    (work / "notes.md").write_text("pushed\n")
    _git("add", "notes.md", cwd=work)
    _git("commit", "-m", "Add notes", cwd=work)
    _git("push", "origin", "HEAD", cwd=work)

    text = _scrape(server)
    assert sample(text, "quire_git_operations_total", operation="clone", outcome="ok") >= 1
    assert sample(text, "quire_git_operations_total", operation="push", outcome="ok") == 1
    assert sample(text, "quire_git_operation_duration_seconds_count", operation="push") == 1
    for operation in ("clone", "push"):
        for direction in ("in", "out"):
            got = sample(text, "quire_git_bytes_total", operation=operation, direction=direction)
            assert got > 0, (operation, direction, got)

    # A short live session (the file the push added): one edit, committed after the quiet period (1 s here).
    agent = agents(server, f"{slug}/main/notes.md", ada, "ada")
    agent.synced()
    agent.do("append", text="Live line.\n")
    deadline = time.monotonic() + 20
    while True:
        text = _scrape(server)
        if sample(text, "quire_live_edit_to_commit_seconds_count") >= 1:
            break
        assert time.monotonic() < deadline, server.tail()
        time.sleep(0.3)
    assert sample(text, "quire_live_updates_broadcast_total") > 0
    assert sample(text, "quire_live_rooms") == 1
    assert sample(text, "quire_live_connected_editors") == 1
    assert sample(text, "quire_live_journal_uncommitted_entries") == 0

    # A push while the room is open: the room merges the moved branch into its text.
    _git("pull", "--ff-only", cwd=work)
    (work / "other.md").write_text("another file\n")
    _git("add", "other.md", cwd=work)
    _git("commit", "-m", "Add other", cwd=work)
    _git("push", "origin", "HEAD", cwd=work)
    deadline = time.monotonic() + 10
    while sample(_scrape(server), "quire_merge_computations_total", outcome="clean") < 1:
        assert time.monotonic() < deadline, server.tail()
        time.sleep(0.2)
    text = _scrape(server)
    assert sample(text, "quire_git_operations_total", operation="fetch", outcome="ok") >= 1
    assert sample(text, "quire_git_operations_total", operation="push", outcome="ok") == 2
    agent.close()

    # The pre-receive hook imports the app but got no metrics directory: only the
    # gunicorn processes wrote metric files.
    assert server.proc is not None
    gunicorn = {server.proc.pid, *map(int, _children(server.proc.pid))}
    writers = {int(p.stem.rsplit("_", 1)[1]) for p in (server.var_dir / "prometheus").glob("*.db")}
    assert writers and writers <= gunicorn, (writers, gunicorn)

    # Leaving: the editor gauge drops back (the room closes on its own once idle).
    deadline = time.monotonic() + 10
    while sample(_scrape(server), "quire_live_connected_editors") != 0:
        assert time.monotonic() < deadline, server.tail()
        time.sleep(0.2)
    print(
        "\n"
        + "\n".join(
            line
            for line in _scrape(server).splitlines()
            if line.startswith(
                ("quire_git_operations", "quire_git_bytes", "quire_live_", "quire_merge")
            )
            and "bucket" not in line
        )
    )


def test_git_children_get_the_request_id_and_no_metrics_dir(app, monkeypatch) -> None:
    from app.githttp.services import git_env
    from app.ops.logs import REQUEST_ID_ENV, bound_request_id
    from gitstore.transport import _clean_env

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/tmp/quire-prometheus")
    with app.test_request_context("/x.git/git-receive-pack"), bound_request_id("req-abc123"):
        env = _clean_env(git_env())
    assert env[REQUEST_ID_ENV] == "req-abc123"
    assert "PROMETHEUS_MULTIPROC_DIR" not in env
