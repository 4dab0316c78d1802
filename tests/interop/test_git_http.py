"""The real git CLI against Quire served by gunicorn with the gevent worker.

Every test makes its own document on a server shared by the module (one per database
backend); the fixture runs ``git fsck --strict`` over every repository at the end.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gitstore.protocol import encode_pkt

OWNER = "ada"


@pytest.fixture
def owner(server) -> str:
    """The document owner, created through the CLI (``flask user create``, ``token create``)."""
    server.user(OWNER, cli=True)
    return OWNER


def commit(git, work: Path, message: str, *, path: str = "document.md", text: str = "") -> str:
    target = work / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text or f"{message}\n")
    git("add", path, cwd=work)
    git("commit", "-q", "-m", message, cwd=work)
    return git("rev-parse", "HEAD", cwd=work).stdout.strip()


def clone(git, server, slug: str, user: str | None, dest: Path, *args: str) -> Path:
    git("clone", "-q", *args, server.url(slug, user), str(dest))
    return dest


def remote_head(server, slug: str, ref: str = "refs/heads/main") -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--verify", "-q", ref],
        cwd=server.repo_path(slug),
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip()


def http(method: str, url: str, *, body: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


# --- reading -----------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["0", "2"])
def test_anonymous_clone_of_public_document(server, owner, git, tmp_path: Path, version) -> None:
    slug = server.document(owner, "Open Notes", visibility="public")
    work = tmp_path / "work"
    git("-c", f"protocol.version={version}", "clone", "-q", server.url(slug), str(work))
    assert (work / "document.md").read_text() == "# Open Notes\n"
    # Anonymous clients may read a public document but never push to it.
    commit(git, work, "anonymous change")
    pushed = git("push", "origin", "main", cwd=work, check=False)
    assert pushed.returncode != 0 and "could not read Username" in pushed.output
    status, headers, body = http("GET", f"{server.url(slug)}/info/refs?service=git-receive-pack")
    assert status == 401 and b"Pushing needs your username and a personal access token" in body


def test_private_document_token_clone_and_refusals(server, owner, git, tmp_path: Path) -> None:
    slug = server.document(owner, "Private Plans")
    # Anonymous: 401 with a Basic challenge, and git gives up without prompting.
    status, headers, body = http("GET", f"{server.url(slug)}/info/refs?service=git-upload-pack")
    assert status == 401 and headers["WWW-Authenticate"] == 'Basic realm="Quire"'
    anonymous = git("clone", server.url(slug), str(tmp_path / "a"), check=False)
    assert anonymous.returncode != 0 and "could not read Username" in anonymous.output
    # A missing repository looks the same to an anonymous client: no leak of existence.
    missing, _, _ = http(
        "GET", f"{server.base_url}/no-such-doc.git/info/refs?service=git-upload-pack"
    )
    assert missing == 401
    # A signed-in stranger gets 404, as for a repository that does not exist.
    server.user("stranger")
    stranger = git("clone", server.url(slug, "stranger"), str(tmp_path / "s"), check=False)
    assert stranger.returncode != 0 and "Repository not found" in stranger.output
    # A password is refused with the way to make a token.
    with_password = server.url(slug, OWNER, "interop%20password%201")
    refused = git("clone", with_password, str(tmp_path / "p"), check=False)
    assert refused.returncode != 0
    assert "Passwords are not accepted" in refused.output and "/settings/tokens" in refused.output
    # The owner's token clones.
    work = clone(git, server, slug, OWNER, tmp_path / "o")
    assert (work / "document.md").read_text() == "# Private Plans\n"


def _history(git, server, slug: str, tmp_path: Path, n: int = 4) -> list[str]:
    work = clone(git, server, slug, OWNER, tmp_path / "seed")
    oids = [
        commit(git, work, f"step {i}", text=f"# Step {i}\n\n" + "words " * 50) for i in range(n)
    ]
    git("push", "-q", "origin", "main", cwd=work)
    return oids


def test_shallow_and_partial_clone(server, owner, git, tmp_path: Path) -> None:
    slug = server.document(owner, "Long History", visibility="public")
    oids = _history(git, server, slug, tmp_path)
    shallow = clone(git, server, slug, None, tmp_path / "shallow", "--depth", "1")
    assert git("rev-list", "--count", "HEAD", cwd=shallow).stdout.strip() == "1"
    assert git("rev-parse", "HEAD", cwd=shallow).stdout.strip() == oids[-1]
    git("fetch", "-q", "--deepen", "2", cwd=shallow)
    assert git("rev-list", "--count", "HEAD", cwd=shallow).stdout.strip() == "3"

    partial = clone(git, server, slug, OWNER, tmp_path / "partial", "--filter=blob:none")
    assert git("config", "remote.origin.partialclonefilter", cwd=partial).stdout.strip() == (
        "blob:none"
    )
    missing = git("rev-list", "--objects", "--all", "--missing=print", cwd=partial).stdout
    assert missing.count("\n?") >= 3  # old versions' blobs were left on the server
    # Reading an old version fetches its blob lazily (a want that is not a ref tip).
    assert "Step 0" in git("show", f"{oids[0]}:document.md", cwd=partial).stdout


def test_fetch_and_pull_see_a_push(server, owner, git, tmp_path: Path) -> None:
    slug = server.document(owner, "Shared Draft")
    first = clone(git, server, slug, OWNER, tmp_path / "first")
    second = clone(git, server, slug, OWNER, tmp_path / "second")
    new = commit(git, first, "from the first clone")
    git("push", "-q", "origin", "main", cwd=first)
    git("fetch", "-q", "origin", cwd=second)
    assert git("rev-parse", "origin/main", cwd=second).stdout.strip() == new
    git("pull", "-q", "--ff-only", cwd=second)
    assert (second / "document.md").read_text() == "from the first clone\n"


def test_gzip_fetch_request(server, owner, git, tmp_path: Path) -> None:
    slug = server.document(owner, "Compressed", visibility="public")
    head = remote_head(server, slug)
    request = encode_pkt(f"want {head} ofs-delta\n") + b"0000" + encode_pkt("done\n")
    status, headers, body = http(
        "POST",
        f"{server.url(slug)}/git-upload-pack",
        body=gzip.compress(request),
        headers={
            "Content-Type": "application/x-git-upload-pack-request",
            "Content-Encoding": "gzip",
        },
    )
    assert status == 200 and headers["Content-Type"] == "application/x-git-upload-pack-result"
    assert b"PACK" in body
    # git gzips its own fetch requests once they pass 1 KiB: many local "haves".
    work = clone(git, server, slug, None, tmp_path / "w", "-c", "protocol.version=0")
    for i in range(40):
        commit(git, work, f"local {i}")
    git("-c", "protocol.version=0", "fetch", "-q", "origin", cwd=work)


# --- pushing -----------------------------------------------------------------------------


def test_editor_pushes_a_branch_and_history_shows_it(server, owner, git, tmp_path: Path) -> None:
    slug = server.document(owner, "Team Draft")
    server.add_member(slug, "eddie", "editor")
    work = clone(git, server, slug, "eddie", tmp_path / "w")
    git("checkout", "-q", "-b", "ideas", cwd=work)
    oid = commit(git, work, "An idea from git")
    git("push", "-q", "origin", "ideas", cwd=work)
    assert remote_head(server, slug, "refs/heads/ideas") == oid
    # The web history (and the API) show it at once, with the pusher's identity.
    body = server.api("GET", f"/documents/{slug}/commits?ref=ideas", server.user(OWNER))
    newest = body["commits"][0]
    assert newest["oid"] == oid and newest["summary"] == "An idea from git"
    assert newest["author"]["name"] == "Push Er"
    assert newest["author"]["email"] == "pusher@example.com"
    with urllib.request.urlopen(
        urllib.request.Request(
            f"{server.base_url}/d/{slug}/history?ref=ideas",
            headers={"Authorization": f"Bearer {server.user(OWNER)}"},
        )
    ) as page:
        assert "An idea from git" in page.read().decode()
    # An event per accepted ref update.
    events = server.query(
        "SELECT e.kind, e.ref, e.new_oid FROM activity_events e JOIN documents d "
        "ON d.id = e.document_id WHERE d.slug = :s",
        s=slug,
    )
    assert ("push", "refs/heads/ideas", oid) in events


def test_protected_default_branch(server, owner, git, tmp_path: Path) -> None:
    slug = server.document(owner, "Guarded")
    server.add_member(slug, "erin", "editor")
    server.add_member(slug, "mona", "maintainer")
    before = remote_head(server, slug)
    editor = clone(git, server, slug, "erin", tmp_path / "e")
    commit(git, editor, "editor edit")
    refused = git("push", "origin", "main", cwd=editor, check=False)
    assert refused.returncode != 0
    assert "! [remote rejected] main -> main (branch 'main' is protected" in refused.output
    assert remote_head(server, slug) == before

    maintainer = clone(git, server, slug, "mona", tmp_path / "m")
    new = commit(git, maintainer, "maintainer edit")
    git("push", "-q", "origin", "main", cwd=maintainer)
    assert remote_head(server, slug) == new
    updated = server.query("SELECT updated_at FROM documents WHERE slug = :s", s=slug)
    assert updated[0][0] is not None

    # Never a non-fast-forward, even for the owner: the pre-receive hook refuses it.
    git("reset", "-q", "--hard", "HEAD~1", cwd=maintainer)
    commit(git, maintainer, "rewritten history")
    forced = git("push", "--force", "origin", "main", cwd=maintainer, check=False)
    assert forced.returncode != 0 and "[remote rejected] main -> main" in forced.output
    assert "non-fast-forward updates of protected branch 'main' are not allowed" in forced.output
    assert remote_head(server, slug) == new

    deleted = git("push", "origin", ":main", cwd=maintainer, check=False)
    assert "! [remote rejected] main (protected branch 'main' cannot be deleted)" in deleted.output
    assert remote_head(server, slug) == new


def test_tags_by_role(server, owner, git, tmp_path: Path) -> None:
    slug = server.document(owner, "Releases")
    server.add_member(slug, "ezra", "editor")
    server.add_member(slug, "mia", "maintainer")
    maintainer = clone(git, server, slug, "mia", tmp_path / "m")
    git("tag", "-a", "v1", "-m", "First release", cwd=maintainer)
    git("push", "-q", "origin", "v1", cwd=maintainer)
    assert remote_head(server, slug, "refs/tags/v1")

    editor = clone(git, server, slug, "ezra", tmp_path / "e")
    git("tag", "v2", cwd=editor)
    refused = git("push", "origin", "v2", cwd=editor, check=False)
    assert "! [remote rejected] v2 -> v2 (only maintainers can create or delete tags)" in (
        refused.output
    )

    commit(git, maintainer, "after v1")
    git("push", "-q", "origin", "main", cwd=maintainer)
    git("tag", "-f", "-a", "v1", "-m", "moved", cwd=maintainer)
    moved = git("push", "--force", "origin", "v1", cwd=maintainer, check=False)
    assert "! [remote rejected] v1 -> v1 (tags are never moved" in moved.output

    # Releases are immutable: even a maintainer cannot delete one by pushing.
    dropped = git("push", "origin", ":refs/tags/v1", cwd=maintainer, check=False)
    assert "! [remote rejected] v1 (only site admins can delete tags)" in dropped.output
    assert remote_head(server, slug, "refs/tags/v1")


def test_refs_outside_branches_and_tags_are_refused(server, owner, git, tmp_path: Path) -> None:
    slug = server.document(owner, "Odd Refs")
    work = clone(git, server, slug, OWNER, tmp_path / "w")
    commit(git, work, "odd")
    mr = git("push", "origin", "HEAD:refs/merge-requests/1/head", cwd=work, check=False)
    assert "[remote rejected] HEAD -> refs/merge-requests/1/head (refs/merge-requests/*" in (
        mr.output
    )
    git("notes", "--ref", "x", "add", "-m", "a note", cwd=work)
    notes = git("push", "origin", "refs/notes/x", cwd=work, check=False)
    assert "[remote rejected] refs/notes/x -> refs/notes/x (only branches" in notes.output
    assert remote_head(server, slug, "refs/notes/x") == ""


@pytest.mark.parametrize("role", ["viewer", "reviewer"])
def test_viewers_and_reviewers_cannot_push(server, owner, git, tmp_path: Path, role) -> None:
    slug = server.document(owner, f"Read Only {role}")
    server.add_member(slug, f"{role}-vic", role)
    work = clone(git, server, slug, f"{role}-vic", tmp_path / "w")
    git("checkout", "-q", "-b", "mine", cwd=work)
    commit(git, work, "not allowed")
    refused = git("push", "origin", "mine", cwd=work, check=False)
    assert refused.returncode != 0
    assert f"You have {role} access to {slug}: pushing needs the editor role" in refused.output


def test_concurrent_pushes_to_one_branch(server, owner, git, tmp_path: Path) -> None:
    slug = server.document(owner, "Race")
    clones = [clone(git, server, slug, OWNER, tmp_path / f"c{i}") for i in range(2)]
    oids = [commit(git, work, f"racer {i}", text=f"racer {i}\n") for i, work in enumerate(clones)]
    procs = [git.popen("push", "origin", "main", cwd=work) for work in clones]
    results = [(p.wait(60), p.stderr.read()) for p in procs]
    winners = [i for i, (code, _) in enumerate(results) if code == 0]
    assert len(winners) == 1, results
    assert remote_head(server, slug) == oids[winners[0]]
    loser_output = results[1 - winners[0]][1]
    assert "rejected" in loser_output or "failed to update ref" in loser_output


def test_push_racing_an_api_save_loses_nothing(server, owner, git, tmp_path: Path) -> None:
    """A push and a save of the same branch at once: each lands or is cleanly refused."""
    slug = server.document(owner, "Push Race")
    token = server.user(owner)
    for round_ in range(4):
        work = clone(git, server, slug, OWNER, tmp_path / f"w{round_}")
        base = remote_head(server, slug)
        text = (work / "document.md").read_text()
        (work / f"pushed-{round_}.md").write_text(f"pushed in round {round_}\n")
        git("add", ".", cwd=work)
        git("commit", "-q", "-m", f"push {round_}", cwd=work)
        pushed = git("rev-parse", "HEAD", cwd=work).stdout.strip()

        def save(round_: int = round_, base: str = base, text: str = text) -> None:
            server.api(
                "PUT",
                f"/documents/{slug}/files/document.md",
                token,
                {"content": text + f"\nsaved in round {round_}\n", "parent": base},
            )

        saver = threading.Thread(target=save)
        push = git.popen("push", "origin", "main", cwd=work)
        saver.start()
        code, stderr = push.wait(60), push.stderr.read()
        saver.join(60)
        head = remote_head(server, slug)
        content = subprocess.run(
            ["git", "show", f"{head}:document.md"],
            cwd=server.repo_path(slug),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        # The save always lands: on its parent, or merged onto the pushed commit.
        assert f"saved in round {round_}" in content
        ancestry = subprocess.run(
            ["git", "merge-base", "--is-ancestor", pushed, head],
            cwd=server.repo_path(slug),
            check=False,
        ).returncode
        if code == 0:
            assert ancestry == 0, "an accepted push must stay in the branch"
        else:
            assert "rejected" in stderr or "failed to update ref" in stderr, stderr
            assert ancestry != 0


def test_old_clone_url_works_after_rename(server, owner, git, tmp_path: Path) -> None:
    slug = server.document(owner, "Before Rename")
    work = clone(git, server, slug, OWNER, tmp_path / "w")
    server.rename(slug, f"{slug}-renamed")
    new = commit(git, work, "pushed to the old URL")
    git("push", "-q", "origin", "main", cwd=work)
    git("fetch", "-q", "origin", cwd=work)
    assert remote_head(server, f"{slug}-renamed") == new
    status, headers, _ = http("GET", f"{server.base_url}/d/{slug}", headers={})
    assert status in (301, 404)  # private: anonymous readers get no redirect hint


# --- limits and bad input ------------------------------------------------------------------


def _vm(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])  # kB
    raise AssertionError(key)


@pytest.mark.slow
def test_50mb_push_streams_in_bounded_memory(server, owner, git, tmp_path: Path) -> None:
    if server.backend != "postgresql":
        pytest.skip("measured once, on the production configuration")
    slug = server.document(owner, "Big Upload")
    work = clone(git, server, slug, OWNER, tmp_path / "w")
    (work / "big.bin").write_bytes(os.urandom(50 * 1024 * 1024))
    git("add", "big.bin", cwd=work)
    git("commit", "-q", "-m", "fifty megabytes", cwd=work)
    git("checkout", "-q", "-b", "big", cwd=work)
    worker = server.worker_pid()
    peak_before = _vm(worker, "VmHWM")
    # A small postBuffer makes git send the pack chunked, after a 4-byte probe request.
    git("-c", "http.postBuffer=65536", "push", "-q", "origin", "big", cwd=work)
    growth_mb = (_vm(worker, "VmHWM") - peak_before) / 1024
    print(f"worker peak RSS grew by {growth_mb:.1f} MB during a 50 MB push")
    assert growth_mb < 20
    assert remote_head(server, slug, "refs/heads/big")


@pytest.mark.slow
def test_client_disconnecting_mid_push_leaves_nothing(server, owner, git, tmp_path: Path) -> None:
    if server.backend != "postgresql":
        pytest.skip("the database plays no part; run once, on the production configuration")
    slug = server.document(owner, "Interrupted")
    work = clone(git, server, slug, OWNER, tmp_path / "w")
    (work / "big.bin").write_bytes(os.urandom(40 * 1024 * 1024))
    git("add", "big.bin", cwd=work)
    git("commit", "-q", "-m", "never arrives", cwd=work)
    git("checkout", "-q", "-b", "cut", cwd=work)
    proc = subprocess.Popen(
        ["git", "-c", "http.postBuffer=65536", "push", "origin", "cut"],
        cwd=work,
        env=git.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    repo = server.repo_path(slug)
    deadline = time.monotonic() + 30
    while not list((repo / "objects").glob("tmp_objdir-incoming-*")):
        assert time.monotonic() < deadline and proc.poll() is None, "push never started"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 30
    while list((repo / "objects").glob("tmp_objdir-incoming-*")):
        assert time.monotonic() < deadline, "quarantine not cleaned up"
        time.sleep(0.1)
    assert remote_head(server, slug, "refs/heads/cut") == ""
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=repo, capture_output=True, check=False)
    assert fsck.returncode == 0, fsck.stderr


def _raw_request(server, head: bytes) -> bytes:
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def test_bad_requests_get_clear_errors(server, owner, git, tmp_path: Path) -> None:
    slug = server.document(owner, "Target Practice", visibility="public")
    token = server.user(OWNER)
    auth = {"Authorization": f"Bearer {token}"}
    url = server.url(slug)
    before = remote_head(server, slug)

    def post(service: str, body: bytes, content_type: str | None = None, **extra):
        headers = {"Content-Type": content_type or f"application/x-{service}-request", **auth}
        return http("POST", f"{url}/{service}", body=body, headers={**headers, **extra})

    status, _, body = post("git-upload-pack", b"zzzzgarbage")
    assert status == 400 and b"Malformed fetch request" in body
    status, _, body = post("git-receive-pack", b"0032not a command at all, not at all!!!!!!!!\n")
    assert status == 400 and b"Malformed push request" in body
    status, _, body = post("git-receive-pack", b"00")
    assert status == 400
    status, _, body = post("git-upload-pack", b"0000", content_type="text/plain")
    assert status == 415 and b"application/x-git-upload-pack-request" in body
    status, _, body = post("git-upload-pack", b"0000", **{"Content-Encoding": "br"})
    assert status == 415
    # Over the limit: refused from the Content-Length alone, before any body is read.
    answer = _raw_request(
        server,
        (
            f"POST /{slug}.git/git-receive-pack HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {token}\r\n"
            "Content-Type: application/x-git-receive-pack-request\r\n"
            "Content-Length: 9000000000\r\nConnection: close\r\n\r\n"
        ).encode(),
    )
    assert answer.startswith(b"HTTP/1.1 413") and b"larger than this server accepts" in answer
    # Dumb HTTP and impossible names.
    assert http("GET", f"{url}/info/refs")[0] == 403
    status, _, body = http("GET", f"{url}/HEAD")
    assert status == 403 and b"Dumb HTTP is not supported" in body
    assert http("GET", f"{url}/objects/info/packs")[0] == 403
    for name in ("..", "a..b", "%2e%2e", "caf%C3%A9", "%EF%BC%A1bc", "UPPER", "x%00y"):
        status, _, body = http(
            "GET", f"{server.base_url}/{name}.git/info/refs?service=git-upload-pack"
        )
        assert status in (400, 404), (name, status)
    status, _, body = http(
        "GET",
        f"{url}/info/refs?service=git-upload-pack",
        headers={"Git-Protocol": "version=2:GIT_DIR=/etc x"},
    )
    assert status == 400 and b"Git-Protocol" in body
    assert remote_head(server, slug) == before


def test_events_and_signal_payload_shape(server, owner, git, tmp_path: Path) -> None:
    slug = server.document(owner, "Evented")
    work = clone(git, server, slug, OWNER, tmp_path / "w")
    new = commit(git, work, "tracked")
    git("push", "-q", "origin", "main", "HEAD:refs/heads/side", cwd=work)
    rows = server.query(
        "SELECT e.kind, e.ref, e.old_oid, e.new_oid FROM activity_events e "
        "JOIN documents d ON d.id = e.document_id WHERE d.slug = :s ORDER BY e.id",
        s=slug,
    )
    refs = {row[1]: row for row in rows}
    assert refs["refs/heads/main"][0] == "push" and refs["refs/heads/main"][3] == new
    assert refs["refs/heads/side"][2] == "0" * 40
    assert json.dumps  # events are JSON-friendly rows (data column)


def test_other_requests_are_served_during_a_big_clone(server, owner, git, tmp_path) -> None:
    """Subprocess I/O is cooperative: /up answers while a clone streams."""
    slug = server.document(owner, "Busy", visibility="public")
    done = threading.Event()
    timings: list[float] = []

    def ping() -> None:
        while not done.is_set():
            start = time.monotonic()
            with urllib.request.urlopen(server.base_url + "/up", timeout=10):
                pass
            timings.append(time.monotonic() - start)
            time.sleep(0.01)

    thread = threading.Thread(target=ping)
    thread.start()
    try:
        for i in range(3):
            clone(git, server, slug, None, tmp_path / f"c{i}")
    finally:
        done.set()
        thread.join()
    assert timings and max(timings) < 2
