"""The deploy rehearsal (issue 6, "Zero downtime, proven", acceptance 2).

Kamal's sequence, reproduced on this machine with a real reverse proxy (Debian's
nginx standing in for kamal-proxy): version A serves behind the proxy under
continuous load — page views, API saves, a ``git push`` and two live editors
(stock y-websocket clients, node) — then version B starts on another port, its
``/up`` turns 200, the proxy switches to it (config rewrite + ``nginx -s reload``)
and A gets SIGTERM. Both versions share one PostgreSQL database, ``REPOS_ROOT`` and
Redis (a key prefix of the test's own), as they do in production.

Zero failed HTTP requests, every save and live edit in Git afterwards, and the
live editors reconnected on their own.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.live.conftest import Agent, Server, _free_port, node_client  # noqa: F401
from tests.live.test_multiprocess import two_servers

pytestmark = pytest.mark.slow

IN_CI = os.environ.get("CI", "").lower() == "true"
TEMPLATE = Path(__file__).with_name("nginx.conf.template")
LIVE_FILE = "document.md"
SAVES_FILE = "saves.md"


@dataclass
class Nginx:
    """nginx in the foreground, with its own prefix, config, pid and logs in ``tmp``."""

    binary: str
    tmp: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def conf(self) -> Path:
        return self.tmp / "nginx.conf"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write(self, upstream_port: int) -> None:
        text = TEMPLATE.read_text()
        for key, value in {
            "{tmp}": str(self.tmp),
            "{listen_port}": str(self.port),
            "{upstream_port}": str(upstream_port),
        }.items():
            text = text.replace(key, value)
        if os.geteuid() == 0:  # else workers run as nobody, locked out of the temp dir
            text = "user root;\n" + text
        self.conf.write_text(text)

    def _args(self) -> list[str]:
        return [self.binary, "-p", str(self.tmp), "-c", str(self.conf), "-g", "daemon off;"]

    def start(self, upstream_port: int) -> None:
        self.write(upstream_port)
        with (self.tmp / "stderr.log").open("ab") as log:
            self.proc = subprocess.Popen(self._args(), stdout=log, stderr=subprocess.STDOUT)
        self.wait_upstream(upstream_port)

    def switch(self, upstream_port: int) -> None:
        self.write(upstream_port)
        subprocess.run([*self._args(), "-s", "reload"], check=True, timeout=30)
        self.wait_upstream(upstream_port)

    def wait_upstream(self, upstream_port: int) -> None:
        """Until several answers in a row came from ``upstream_port`` (the reload took)."""
        deadline = time.monotonic() + 30
        in_a_row = 0
        while in_a_row < 5:
            assert time.monotonic() < deadline, self.tail()
            assert self.proc is not None and self.proc.poll() is None, self.tail()
            try:
                with urllib.request.urlopen(self.base_url + "/up", timeout=2) as response:
                    got = response.headers.get("X-Upstream", "")
                in_a_row = in_a_row + 1 if got.endswith(f":{upstream_port}") else 0
            except (urllib.error.URLError, OSError):
                in_a_row = 0
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful shutdown
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self) -> str:
        out = []
        for name in ("stderr.log", "error.log"):
            with contextlib.suppress(OSError):
                out.append(f"--- nginx {name} ---\n" + (self.tmp / name).read_text()[-3000:])
        return "\n".join(out)


@dataclass
class Stats:
    """What the load did, shared by its threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: Counter[str] = field(default_factory=Counter)
    upstreams: Counter[str] = field(default_factory=Counter)  # nginx's X-Upstream
    failed: list[str] = field(default_factory=list)
    conflicts: int = 0
    saves: list[str] = field(default_factory=list)
    typed: dict[str, list[str]] = field(default_factory=dict)

    def request(
        self, kind: str, url: str, *, method: str = "GET", token: str = "", body: Any = None
    ) -> tuple[int, bytes]:
        """One HTTP request through the proxy: (status, body); 0 for a connection error."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        with self.lock:
            self.sent[kind] += 1
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                self._served_by(response.headers)
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            self._served_by(exc.headers)
            return exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            self.fail(f"{kind} {method} {url}: {type(exc).__name__}: {exc}")
            return 0, b""

    def _served_by(self, headers: Any) -> None:
        with self.lock:
            self.upstreams[headers.get("X-Upstream", "?").rpartition(":")[2]] += 1

    def fail(self, what: str) -> None:
        with self.lock:
            self.failed.append(f"{time.strftime('%H:%M:%S')} {what}")


def _page_views(stop: threading.Event, stats: Stats, url: str) -> None:
    while not stop.is_set():
        status, _ = stats.request("page view", url)
        if status and not 200 <= status < 400:
            stats.fail(f"page view {url}: HTTP {status}")
        time.sleep(0.02)


def _api_saves(stop: threading.Event, stats: Stats, api: str, token: str) -> None:
    """Append a unique line per save, from the last known head; on 409, re-read and retry."""
    n = 0
    while not stop.is_set():
        status, body = stats.request("api read", api, token=token)
        if status != 200:
            if status:
                stats.fail(f"api read: HTTP {status} {body[:200]!r}")
            time.sleep(0.1)
            continue
        current = json.loads(body)
        line = f"save {n} {uuid.uuid4().hex[:8]}"
        content = current["content"] + line + "\n"
        payload = {"content": content, "parent": current["commit"], "message": line}
        status, body = stats.request("api save", api, method="PUT", token=token, body=payload)
        if status in (200, 201):
            with stats.lock:
                stats.saves.append(line)
            n += 1
        elif status == 409:  # someone moved the branch in a conflicting way: re-read
            with stats.lock:
                stats.conflicts += 1
        elif status:
            stats.fail(f"api save: HTTP {status} {body[:200]!r}")
        time.sleep(0.05)


def _typist(stop: threading.Event, stats: Stats, agent: Agent, name: str) -> None:
    i = 0
    while not stop.is_set():
        line = f"{name} types line {i}\n"
        try:
            agent.do("append", text=line)
        except AssertionError as exc:
            stats.fail(f"{name}: {exc}")
            return
        with stats.lock:
            stats.typed[name].append(line)
        i += 1
        time.sleep(0.15)


def _git(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Nginx]:
    binary = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if binary is None:
        if IN_CI:
            pytest.fail("nginx is required for the deploy rehearsal under CI=true")
        pytest.skip("nginx not installed (apt-get install nginx; scripts/test does as root)")
    tmp = tmp_path / "nginx"
    (tmp / "logs").mkdir(parents=True)  # nginx opens <prefix>/logs/error.log before -c
    proxy = Nginx(binary, tmp, _free_port())
    yield proxy
    proxy.stop()


@pytest.fixture
def versions(tmp_path: Path, node_client: Path) -> Iterator[tuple[Server, Server]]:  # noqa: F811
    """Versions A and B (same code, two ports) on one database, REPOS_ROOT and Redis."""
    with two_servers(tmp_path, "rehearsal", TRUSTED_PROXY_HOPS="1") as (a, b, _url):
        yield a, b


def test_deploy_rehearsal_zero_downtime(
    versions: tuple[Server, Server],
    nginx: Nginx,
    node_client: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    a, b = versions
    a.flask("db", "upgrade")
    a.start()
    nginx.start(a.port)
    logs = lambda: f"--- A ---\n{a.tail()}\n--- B ---\n{b.tail()}\n{nginx.tail()}"  # noqa: E731

    ada, bob = a.user("ada"), a.user("bob", admin=True)
    slug = a.api("POST", "/documents", ada, {"title": "Rehearsal", "visibility": "public"})["slug"]
    head = a.api("GET", f"/documents/{slug}/files/{LIVE_FILE}", ada)["commit"]
    a.api(
        "PUT",
        f"/documents/{slug}/files/{SAVES_FILE}",
        ada,
        {"content": "# Saves\n", "parent": head},
    )
    proxy = nginx.base_url
    api = f"{proxy}/api/v1/documents/{slug}/files/{SAVES_FILE}"

    # Two live editors, through nginx's websocket.
    ws = SimpleNamespace(ws_url=f"ws://127.0.0.1:{nginx.port}/live")
    room = f"{slug}/main/{LIVE_FILE}"
    editors = {"ada": Agent(node_client, ws, room, ada, "ada")}  # type: ignore[arg-type]
    editors["bob"] = Agent(node_client, ws, room, bob, "bob")  # type: ignore[arg-type]
    stats = Stats(typed={name: [] for name in editors})
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        for agent in editors.values():
            agent.synced()
        threads = [
            threading.Thread(target=_page_views, args=(stop, stats, f"{proxy}/d/{slug}")),
            threading.Thread(target=_page_views, args=(stop, stats, f"{proxy}/d/{slug}")),
            threading.Thread(target=_api_saves, args=(stop, stats, api, ada)),
            *(
                threading.Thread(target=_typist, args=(stop, stats, agent, name))
                for name, agent in editors.items()
            ),
        ]
        for thread in threads:
            thread.start()
        time.sleep(2)

        # One git push through the proxy, while the load runs on A.
        home = tmp_path / "home"
        home.mkdir()
        git_env = {
            "HOME": str(home),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "Push Er",
            "GIT_AUTHOR_EMAIL": "pusher@example.com",
            "GIT_COMMITTER_NAME": "Push Er",
            "GIT_COMMITTER_EMAIL": "pusher@example.com",
            "LANG": "C",
        }
        remote = f"http://ada:{ada}@127.0.0.1:{nginx.port}/{slug}.git"
        work = tmp_path / "clone"
        cloned = _git("clone", "-q", remote, str(work), cwd=tmp_path, env=git_env)
        assert cloned.returncode == 0, cloned.stderr + logs()
        pushed_line = f"pushed {uuid.uuid4().hex}"
        (work / "pushed.md").write_text(pushed_line + "\n")
        _git("add", "pushed.md", cwd=work, env=git_env)
        _git("commit", "-q", "-m", "A push during the deploy", cwd=work, env=git_env)
        pushed = _git("push", "-q", "origin", "HEAD:refs/heads/pushed", cwd=work, env=git_env)
        assert pushed.returncode == 0, pushed.stderr + logs()
        time.sleep(1)

        # Kamal: boot B, wait for /up, switch the proxy, stop A.
        b.start()  # returns once B's /up answered 200
        nginx.switch(b.port)
        assert a.proc is not None
        started = time.monotonic()
        a.proc.send_signal(signal.SIGTERM)  # the gunicorn master
        a.proc.wait(timeout=45)
        stopped_in = time.monotonic() - started
        a.kill(signal.SIGTERM)  # no-op unless a worker outlived its master

        time.sleep(4)  # the load keeps running, on B
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)

    try:
        # The live editors reconnected on their own (through nginx, to B) and converge.
        every_typed = [line for lines in stats.typed.values() for line in lines]
        for agent in editors.values():
            agent.synced()
            assert agent.wait_for(every_typed[-1], timeout=20)
        for line in every_typed:
            for agent in editors.values():
                assert line in agent.text(), f"{agent.name} lacks {line!r}" + logs()
        texts = {name: agent.text() for name, agent in editors.items()}
        # Each was closed by A with "going away" (1001), then reconnected by itself.
        closes = {name: agent.do("text")["closes"] for name, agent in editors.items()}
        assert texts["ada"] == texts["bob"], texts

        # After the quiet period, every live edit is in Git, exactly once.
        def live_in_git() -> str | None:
            content = b.api("GET", f"/documents/{slug}/files/{LIVE_FILE}", ada)["content"]
            return content if all(line in content for line in every_typed) else None

        deadline = time.monotonic() + 30
        live_text = live_in_git()
        while live_text is None and time.monotonic() < deadline:
            time.sleep(0.3)
            live_text = live_in_git()
        live_text = b.api("GET", f"/documents/{slug}/files/{LIVE_FILE}", ada)["content"]
        live_committed = [line for line in every_typed if live_text.count(line) == 1]

        saved_text = b.api("GET", f"/documents/{slug}/files/{SAVES_FILE}", ada)["content"]
        saves_in_git = [line for line in stats.saves if saved_text.count(line + "\n") == 1]
        push_in_git = b.api("GET", f"/documents/{slug}/files/pushed.md?ref=pushed", ada)
    finally:
        for agent in editors.values():
            agent.close()

    sent = sum(stats.sent.values())
    print(
        "\ndeploy rehearsal:"
        f"\n  requests sent:        {sent} ({dict(stats.sent)} + git clone/push)"
        f"\n  failed:               {len(stats.failed)}"
        f"\n  409 retries:          {stats.conflicts}"
        f"\n  saves made:           {len(stats.saves)}"
        f"\n  saves in Git:         {len(saves_in_git)}"
        f"\n  live edits typed:     {len(every_typed)}"
        f"\n  live edits in Git:    {len(live_committed)}"
        f"\n  served by A / B:      {stats.upstreams[str(a.port)]} / {stats.upstreams[str(b.port)]}"
        f"\n  A stopped in:         {stopped_in:.1f} s"
        f"\n  editors' closes:      {closes} (then reconnected, texts converged)"
    )
    assert stats.failed == [], "\n".join(stats.failed[:20]) + "\n" + logs()
    assert sent > 100 and stats.saves and every_typed
    assert stats.upstreams[str(a.port)] > 0 and stats.upstreams[str(b.port)] > 0, stats.upstreams
    assert set(stats.upstreams) == {str(a.port), str(b.port)}, stats.upstreams
    for name, closed in closes.items():
        assert closed and all(c["code"] == 1001 for c in closed), (name, closed)
    assert len(saves_in_git) == len(stats.saves), logs()
    off = [(line, live_text.count(line)) for line in every_typed if live_text.count(line) != 1]
    assert not off, (f"live edits in Git not exactly once (line, count): {off}", logs())
    assert live_text == texts["ada"]
    assert push_in_git["content"] == pushed_line + "\n"
    assert stopped_in < 30, f"A took {stopped_in:.1f} s to stop"
