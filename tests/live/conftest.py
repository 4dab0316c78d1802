"""A real Quire server (gunicorn + gevent) and stock Yjs clients (node) for live tests.

The server is started the way production starts it (``deploy/gunicorn.conf.py``)
on a free port, with its own SQLite database and repositories. The clients are
npm's ``y-websocket`` WebsocketProvider over node ``ws`` (``tests/live/js``),
driven through JSON lines.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
JS = Path(__file__).resolve().parent / "js"
VENV_BIN = ROOT / ".venv" / "bin"
IN_CI = os.environ.get("CI", "").lower() == "true"
PASSWORD = "correct horse battery"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def node_client() -> Path:
    """``tests/live/js`` with its locked dependencies installed (``npm ci`` once)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        if IN_CI:
            pytest.fail("node and npm are required for the live tests under CI=true")
        pytest.skip("node/npm not installed")
    lock = JS / "package-lock.json"
    stamp = JS / "node_modules" / ".quire-lock"
    if not stamp.exists() or stamp.read_text() != lock.read_text():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=JS,
            check=True,
            timeout=300,
        )
        stamp.write_text(lock.read_text())
    return JS / "agent.mjs"


@dataclass
class Server:
    """One gunicorn process group serving Quire on ``port``."""

    var_dir: Path
    port: int
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.var_dir / "server.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/live"

    def flask(self, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            [str(VENV_BIN / "flask"), "--app", "app", *args],
            cwd=ROOT,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(VENV_BIN / "gunicorn"),
                    "--config",
                    "deploy/gunicorn.conf.py",
                    "app:create_app()",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill master and workers
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.base_url + "/up", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        raise RuntimeError("server did not start:\n" + self.tail())

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (gunicorn master and worker) and wait."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        self.proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the worker may outlive the master briefly
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)

    def tail(self, lines: int = 80) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def api(self, method: str, path: str, token: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + "/api/v1" + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def user(self, name: str, *, admin: bool = False) -> str:
        """Create a user; return a personal access token for them."""
        self.flask(
            "user",
            "create",
            name,
            "--email",
            f"{name}@example.com",
            "--password-stdin",
            *(["--admin"] if admin else []),
            stdin=PASSWORD + "\n",
        )
        # The token is the command's last line (logs may precede it on stdout).
        return self.flask("token", "create", name, "--name", "live-tests").splitlines()[-1]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    port = _free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "QUIRE_VAR_DIR": str(var_dir),
        "DATABASE_URL": f"sqlite:///{var_dir / 'quire.db'}",
        "REPOS_ROOT": str(var_dir / "repos"),
        "SECRET_KEY": "live-tests-secret",
        "LIVE_COMMIT_QUIET_SECONDS": "1",
        "LIVE_COMMIT_MAX_SECONDS": "5",
        "LIVE_HEAD_POLL_SECONDS": "0.5",
        "ACCESS_LOG": str(var_dir / "access.log"),
        "REDIS_URL": "",
    }
    srv = Server(var_dir, port, env)
    srv.flask("db", "upgrade")
    srv.start()
    yield srv
    if srv.proc is not None and srv.proc.poll() is None:
        srv.kill(signal.SIGTERM)


class Agent:
    """One node process holding one WebsocketProvider."""

    def __init__(self, script: Path, server: Server, room: str, token: str, name: str) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            ["node", str(script), server.ws_url, room, token],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "AGENT_NAME": name},
        )
        self.replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self._next = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            message = json.loads(line)
            if "id" in message:
                self.replies.put(message)

    def do(self, op: str, timeout: float = 30, **args: Any) -> dict[str, Any]:
        self._next += 1
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps({"id": self._next, "op": op, **args}) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            stderr = self.proc.stderr.read() if self.proc.stderr else ""
            raise AssertionError(f"{self.name} exited: {stderr[-2000:]}") from None
        try:
            return self.replies.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.name}: no answer to {op}") from None

    def synced(self) -> None:
        reply = self.do("synced")
        assert reply["ok"], f"{self.name} did not sync: {reply}"

    def text(self) -> str:
        return self.do("text")["text"]

    def wait_for(self, contains: str, timeout: float = 10) -> str:
        reply = self.do("wait", contains=contains, timeout=int(timeout * 1000), timeout_=0)
        assert reply["ok"], f"{self.name} never saw {contains!r}; has {reply['text']!r}"
        return reply["text"]

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(AssertionError, BrokenPipeError):
                self.do("close", timeout=5)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def agents(node_client: Path) -> Iterator[Any]:
    started: list[Agent] = []

    def start(server: Server, room: str, token: str, name: str) -> Agent:
        agent = Agent(node_client, server, room, token, name)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.close()
