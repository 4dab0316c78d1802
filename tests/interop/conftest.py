"""A real Quire server (gunicorn + gevent worker) on a free port, and real git clients.

The server runs as a subprocess on its own database (SQLite file, or a fresh
PostgreSQL database) and repository root; accounts, tokens and documents are made
through the CLI and the JSON API, as a user would. Memberships are set through the
services in this process, on the same database.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PASSWORD = "interop password 1"
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _unavailable(what: str, exc: Exception) -> None:
    message = f"{what} unreachable ({type(exc).__name__}: {exc})"
    if IN_CI:
        pytest.fail(f"{message}; CI=true requires it", pytrace=False)
    pytest.skip(message)


def _pg_url(database: str) -> str:
    base, _, _ = TEST_DATABASE_URL.rpartition("/")
    return f"{base}/{database}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class GitResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class Server:
    backend: str
    base_url: str
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    repos_root: Path
    tmp: Path
    tokens: dict[str, str] = field(default_factory=dict)

    # --- accounts and documents ---------------------------------------------------

    def flask(self, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            [str(VENV_BIN / "flask"), "--app", "app", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            cwd=ROOT,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def user(self, username: str, *, cli: bool = False) -> str:
        """Create ``username`` (once) and return a token of theirs.

        ``cli`` goes through ``flask user create`` / ``flask token create`` as an admin
        would; otherwise the services are called in this process (faster).
        """
        if username in self.tokens:
            return self.tokens[username]
        if cli:
            args = ["user", "create", username, "--email", f"{username}@example.com"]
            self.flask(*args, "--password-stdin", stdin=PASSWORD)
            # The secret is the last line (JSON log lines may precede it on stdout).
            output = self.flask("token", "create", username, "--name", "git")
            self.tokens[username] = output.splitlines()[-1]
        else:
            from app import db
            from app.accounts.services import create_token, create_user

            with self.app.app_context():
                user = create_user(username, f"{username}@example.com", PASSWORD)
                self.tokens[username] = create_token(user, "git")[1]
                db.get_db().remove()
        return self.tokens[username]

    def api(self, method: str, path: str, token: str, body: object = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base_url + "/api/v1" + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def document(self, owner: str, title: str, *, visibility: str = "private") -> str:
        body = self.api(
            "POST", "/documents", self.user(owner), {"title": title, "visibility": visibility}
        )
        assert body["clone_url"] == f"{self.base_url}/{body['slug']}.git"
        return body["slug"]

    @functools.cached_property
    def app(self):  # noqa: ANN202 - a Flask app in this process on the server's database
        from app import create_app

        return create_app(
            {
                "DATABASE_URL": self.env["DATABASE_URL"],
                "REPOS_ROOT": self.repos_root,
                "VAR_DIR": self.tmp,
                "SECRET_KEY": "interop",
                "PASSWORD_HASH_PROFILE": "cheapest",
                "RATELIMIT_STORAGE_URI": "memory://",
            }
        )

    def add_member(self, slug: str, username: str, role: str) -> None:
        from app import db
        from app.documents import services

        self.user(username)
        with self.app.app_context():
            document = services.get_document(slug)
            services.set_member(document.owner, document, username, role)
            db.get_db().remove()

    def rename(self, slug: str, new_slug: str) -> None:
        from app import db
        from app.documents import services

        with self.app.app_context():
            document = services.get_document(slug)
            services.update_settings(document.owner, document, slug=new_slug)
            db.get_db().remove()

    def query(self, sql: str, **params: object) -> list[tuple]:
        url = self.env["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                return [tuple(row) for row in conn.execute(text(sql), params)]
        finally:
            engine.dispose()

    def repo_path(self, slug: str) -> Path:
        rows = self.query("SELECT repo_id FROM documents WHERE slug = :s", s=slug)
        repo_id = rows[0][0]
        return self.repos_root / repo_id[:2] / f"{repo_id}.git"

    def url(self, slug: str, username: str | None = None, secret: str | None = None) -> str:
        host = self.base_url.removeprefix("http://")
        if username is None:
            return f"http://{host}/{slug}.git"
        return f"http://{username}:{secret or self.user(username)}@{host}/{slug}.git"

    # --- the process --------------------------------------------------------------

    def worker_pid(self) -> int:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        assert len(children) == 1, children
        return int(children[0])

    def stop(self) -> None:
        if "app" in self.__dict__:
            self.app.extensions["quire.db"].engine.dispose()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _start(backend: str, database_url: str, tmp: Path) -> Server:
    port = _free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "DATABASE_URL": database_url,
        "REPOS_ROOT": str(tmp / "repos"),
        "QUIRE_VAR_DIR": str(tmp),
        "SECRET_KEY": "interop-" + uuid.uuid4().hex,
        "ACCESS_LOG": str(tmp / "access.log"),
        "GUNICORN_TIMEOUT": "120",
        "WEB_CONCURRENCY": "1",
        "REDIS_URL": "",
    }
    env.pop("PYTHONPATH", None)
    subprocess.run(
        [str(VENV_BIN / "flask"), "--app", "app", "db", "upgrade"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            str(VENV_BIN / "gunicorn"),
            "--config",
            "deploy/gunicorn.conf.py",
            "app:create_app()",
        ],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(base_url + "/up", timeout=2):
                break
        except (urllib.error.URLError, ConnectionError, OSError):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(
                    "gunicorn did not start:\n" + (tmp / "server.log").read_text()
                ) from None
            time.sleep(0.1)
    return Server(backend, base_url, env, proc, tmp / "repos", tmp)


def _fsck_all(server: Server) -> None:
    """Every repository must be `git fsck --strict` clean and free of leftovers."""
    for repo in sorted(server.repos_root.glob("*/*.git")):
        result = subprocess.run(
            ["git", "fsck", "--strict", "--no-progress"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, f"{repo}: {result.stdout}{result.stderr}"
        leftovers = list((repo / "objects").glob("tmp_objdir-incoming-*"))
        assert not leftovers, f"{repo}: quarantine left behind: {leftovers}"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    backend = request.param
    tmp = tmp_path_factory.mktemp(f"interop-{backend}")
    drop = None
    if backend == "postgresql":
        admin_url = TEST_DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1)
        name = f"quire_interop_{uuid.uuid4().hex[:12]}"
        try:
            engine = create_engine(
                admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
            )
            with engine.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:  # noqa: BLE001 - unreachable means unavailable
            _unavailable("PostgreSQL at " + TEST_DATABASE_URL, exc)
        database_url = _pg_url(name)

        def drop() -> None:
            with engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            engine.dispose()

    else:
        database_url = f"sqlite:///{tmp / 'quire.db'}"
    srv = _start(backend, database_url, tmp)
    try:
        yield srv
        _fsck_all(srv)
    finally:
        srv.stop()
        if drop is not None:
            drop()


@dataclass
class Git:
    """A git client with its own HOME (identity, no credential helper, no prompts)."""

    home: Path
    env: dict[str, str]

    def __call__(self, *args: str, cwd: Path | None = None, check: bool = True) -> GitResult:
        result = subprocess.run(
            ["git", *args],
            cwd=cwd or self.home,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        out = GitResult(result.returncode, result.stdout, result.stderr)
        if check:
            assert result.returncode == 0, f"git {' '.join(args)} failed:\n{out.output}"
        return out

    def popen(self, *args: str, cwd: Path) -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture(params=["1", "2"], ids=["v1", "v2"])
def protocol_version(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def git(tmp_path: Path) -> Iterator[Git]:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "LANG": "C",
    }
    client = Git(home, env)
    client("config", "--global", "user.name", "Push Er")
    client("config", "--global", "user.email", "pusher@example.com")
    client("config", "--global", "credential.helper", "")
    client("config", "--global", "init.defaultBranch", "main")
    client("config", "--global", "protocol.version", "2")
    yield client
