"""``scripts/bench live``: N editors in one room, Quire against the reference Yjs server.

N simulated editors join ONE room over the y-websocket protocol and each inserts a few
characters at a random position once a second (plus an awareness cursor update every
few seconds) for 30 s, at N = 50, 200 and 500. The same load generator
(``bench/js/load.mjs``: raw protocol over node ``ws``, split over several node
processes) runs against

* Quire: gunicorn with ONE gevent worker (``deploy/gunicorn.conf.py``,
  ``WEB_CONCURRENCY=1``), the embedded default (SQLite journal, no Redis), the live
  settings at their defaults except the per-room connection limit, raised to admit
  every editor; and
* the reference server: npm ``@y/websocket-server`` 0.1.1 (Yjs 13) in one node
  process, in memory, no persistence.

Measured per case: latency from a sender's edit to its arrival at every other editor
(p50 / p99), delivery ratio (receptions within the run plus a drain period, divided
by edits sent × (N − 1)), the server's CPU (``/proc/<pid>/stat`` utime + stime over
the sending period, in % of one core) and the load generator's CPU.

Knobs (environment): ``LIVE_BENCH_SIZES`` (default ``50,200,500``),
``LIVE_BENCH_SECONDS`` (30), ``LIVE_BENCH_PROCS`` (load generator processes, 2),
``LIVE_BENCH_SERVERS`` (``quire,reference``), ``LIVE_BENCH_JOIN_CONCURRENCY`` (editors
joining at once per load process, 10). Other ``LIVE_*`` variables reach Quire's
settings (``app/live/settings.py``). ``--profile`` records the Quire
worker with py-spy (if installed) during the largest case.
``--runs``/``--warmup`` of ``scripts/bench`` are for the page benchmarks and are ignored.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.config import PROJECT_ROOT
from bench.common import Timer, load_average, machine, source_version, today, write_section

JS = PROJECT_ROOT / "bench" / "js"
LOAD = JS / "load.mjs"
REFERENCE = JS / "node_modules" / "@y" / "websocket-server" / "src" / "server.js"
VENV_BIN = PROJECT_ROOT / ".venv" / "bin"
PASSWORD = "bench live password"
FILE = "document.md"

SIZES = tuple(int(n) for n in os.environ.get("LIVE_BENCH_SIZES", "50,200,500").split(","))
SECONDS = float(os.environ.get("LIVE_BENCH_SECONDS", "30"))
PROCS = int(os.environ.get("LIVE_BENCH_PROCS", "2"))
SERVERS = tuple(os.environ.get("LIVE_BENCH_SERVERS", "quire,reference").split(","))
DRAIN_SECONDS = 5.0
AWARENESS_SECONDS = 3.0
JOIN_CONCURRENCY = int(os.environ.get("LIVE_BENCH_JOIN_CONCURRENCY", "10"))
GOAL_N = 500
GOAL_P99_MS = 100.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _seed_text() -> str:
    """A realistic Markdown document of about 3 KiB (the same on both servers)."""
    para = (
        "The committee reviewed the draft and agreed that every section should be read "
        "again by someone who did not write it, before the final version goes out to readers."
    )
    parts = ["# Meeting notes\n"]
    for i in range(1, 9):
        parts.append(f"## Section {i}\n\n{para} {para}\n\n- item one\n- item two\n")
    return "\n".join(parts)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server for {url} did not start:\n{_tail(log)}") from None
            time.sleep(0.2)


def _tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _ensure_node() -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise SystemExit("scripts/bench live needs node and npm")
    lock = JS / "package-lock.json"
    stamp = JS / "node_modules" / ".quire-lock"
    if not stamp.exists() or stamp.read_text() != lock.read_text():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=JS,
            check=True,
            timeout=600,
        )
        stamp.write_text(lock.read_text())


# --------------------------------------------------------------------------- servers


class Quire:
    name = "Quire"

    def __init__(self, var_dir: Path, max_editors: int) -> None:
        self.var_dir = var_dir
        self.port = _free_port()
        self.log = var_dir / "quire.log"
        self.env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": "1",
            "WORKER_CONNECTIONS": str(max(1000, 2 * max_editors)),
            "QUIRE_VAR_DIR": str(var_dir),
            "DATABASE_URL": f"sqlite:///{var_dir / 'quire.db'}",
            "REPOS_ROOT": str(var_dir / "repos"),
            "SECRET_KEY": "bench-live-secret",
            "ACCESS_LOG": str(var_dir / "access.log"),
            "REDIS_URL": "",
            "LIVE_MAX_CONNECTIONS_PER_ROOM": str(max(1000, 2 * max_editors)),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.token = ""
        self.documents = 0

    def flask(self, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            [str(VENV_BIN / "flask"), "--app", "app", *args],
            cwd=PROJECT_ROOT,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise SystemExit(f"flask {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout.strip()

    def start(self) -> None:
        self.flask("db", "upgrade")
        self.flask(
            "user",
            "create",
            "bench",
            "--email",
            "bench@example.com",
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
        self.token = self.flask("token", "create", "bench", "--name", "bench-live").splitlines()[-1]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(VENV_BIN / "gunicorn"),
                    "--config",
                    "deploy/gunicorn.conf.py",
                    "app:create_app()",
                ],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_http(f"http://127.0.0.1:{self.port}/up", self.proc, self.log)

    @property
    def pid(self) -> int:
        """The worker (the process that serves the sockets), not the master."""
        assert self.proc is not None
        workers = _children(self.proc.pid)
        if len(workers) != 1:
            raise SystemExit(f"expected one gunicorn worker, found {workers}")
        return workers[0]

    def api(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/v1{path}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def room(self, text: str) -> str:
        """A fresh document whose ``document.md`` holds ``text``; its websocket URL."""
        self.documents += 1
        slug = self.api("POST", "/documents", {"title": f"Live bench {self.documents}"})["slug"]
        current = self.api("GET", f"/documents/{slug}/files/{FILE}")
        self.api(
            "PUT",
            f"/documents/{slug}/files/{FILE}",
            {"content": text, "parent": current["commit"], "message": "Seed the live bench"},
        )
        return f"ws://127.0.0.1:{self.port}/live/{slug}/main/{FILE}"

    def notes(self) -> dict[str, int]:
        log = self.log.read_text(errors="replace")
        return {
            "slow clients disconnected": log.count("disconnecting a slow client"),
            "tracebacks in the server log": log.count("Traceback"),
        }

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class Reference:
    name = "@y/websocket-server"

    def __init__(self, var_dir: Path) -> None:
        self.port = _free_port()
        self.log = var_dir / "reference.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.token = ""
        self.rooms = 0

    def start(self) -> None:
        env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(self.port)}
        env.pop("YPERSISTENCE", None)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                ["node", str(REFERENCE)], cwd=JS, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        _wait_http(f"http://127.0.0.1:{self.port}/", self.proc, self.log)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def room(self, text: str) -> str:
        """A fresh room, seeded with ``text`` by one client (the server holds it in memory)."""
        self.rooms += 1
        url = f"ws://127.0.0.1:{self.port}/bench-{self.rooms}"
        cfg = {
            "url": url,
            "token": "",
            "editors": 1,
            "first": 0,
            "epochNs": time.monotonic_ns(),
            "seconds": 0,
            "drainSeconds": 0,
            "awarenessSeconds": 3,
            "concurrency": 1,
            "seed": text,
        }
        subprocess.run(
            ["node", str(LOAD), json.dumps(cfg)],
            cwd=JS,
            check=True,
            timeout=60,
            capture_output=True,
        )
        return url

    def notes(self) -> dict[str, int]:
        return {}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


# --------------------------------------------------------------------------- one case


@dataclass
class Case:
    server: str
    editors: int
    connected: int = 0
    sent: int = 0
    received: int = 0
    expected: int = 0
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    max_ms: float = math.nan
    server_cpu: float = math.nan  # % of one core over the sending period
    load_cpu: float = math.nan  # % of one core, all load processes together
    load_procs: int = 0
    closed: int = 0
    #: Text length in each load process's Y.Doc at the end (equal when converged).
    lengths: list[int] = field(default_factory=list)
    close_codes: list[Any] = field(default_factory=list)
    notes: dict[str, int] = field(default_factory=dict)

    @property
    def delivered(self) -> float:
        return 100.0 * self.received / self.expected if self.expected else 0.0


def _percentile(hist: dict[int, int], total: int, q: float) -> float:
    if total == 0:
        return math.nan
    rank = math.ceil(q * total)
    seen = 0
    for units in sorted(hist):
        seen += hist[units]
        if seen >= rank:
            return units / 10.0
    return max(hist) / 10.0


def run_case(server: Quire | Reference, editors: int, profile: bool = False) -> Case:
    url = server.room(_seed_text())
    before = server.notes()
    procs = max(1, min(PROCS, editors))
    epoch = time.monotonic_ns()
    loads: list[subprocess.Popen[str]] = []
    share = [editors // procs + (1 if i < editors % procs else 0) for i in range(procs)]
    first = 0
    for count in share:
        cfg = {
            "url": url,
            "token": server.token,
            "editors": count,
            "first": first,
            "epochNs": epoch,
            "seconds": SECONDS,
            "drainSeconds": DRAIN_SECONDS,
            "awarenessSeconds": AWARENESS_SECONDS,
            "concurrency": JOIN_CONCURRENCY,
            "seed": None,
        }
        first += count
        loads.append(
            subprocess.Popen(
                ["node", "--max-old-space-size=2048", str(LOAD), json.dumps(cfg)],
                cwd=JS,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    case = Case(server.name, editors, load_procs=procs)
    try:
        for load in loads:
            ready = _read_event(load, "ready", timeout=300)
            case.connected += ready["connected"]
            case.close_codes += ready.get("closes", [])
        # Give the joins' awareness and sync traffic time to settle, then go together.
        time.sleep(2)
        start = time.monotonic_ns() + 1_000_000_000
        for load in loads:
            assert load.stdin is not None
            load.stdin.write(f"go {start}\n")
            load.stdin.flush()
        time.sleep(max(0.0, (start - time.monotonic_ns()) / 1e9))
        pid = server.pid
        cpu0, t0 = _cpu_seconds(pid), time.monotonic()
        spy = _py_spy(pid, server) if profile else None
        time.sleep(SECONDS)
        cpu1, t1 = _cpu_seconds(pid), time.monotonic()
        case.server_cpu = 100.0 * (cpu1 - cpu0) / (t1 - t0)
        hist: dict[int, int] = {}
        load_cpu = 0.0
        for load in loads:
            result = _read_event(load, "result", timeout=SECONDS + DRAIN_SECONDS + 120)
            case.sent += result["sent"]
            case.received += result["received"]
            case.closed += result["closedCount"]
            case.close_codes += result["closes"]
            load_cpu += result["sendCpuSeconds"] / result["sendWallSeconds"]
            case.lengths.append(result["textLength"])
            for units, count in result["hist"]:
                hist[units] = hist.get(units, 0) + count
        if spy is not None:
            _finish_py_spy(spy)
    finally:
        for load in loads:
            with contextlib.suppress(subprocess.TimeoutExpired):
                load.wait(timeout=10)
            if load.poll() is None:
                load.kill()
    case.load_cpu = 100.0 * load_cpu
    case.expected = case.sent * (editors - 1)
    total = sum(hist.values())
    case.p50_ms = _percentile(hist, total, 0.50)
    case.p99_ms = _percentile(hist, total, 0.99)
    case.max_ms = max(hist) / 10.0 if hist else math.nan
    after = server.notes()
    case.notes = {k: v - before.get(k, 0) for k, v in after.items()}
    return case


def _read_event(load: subprocess.Popen[str], event: str, timeout: float) -> dict[str, Any]:
    """The next JSON line from a load process whose ``event`` is ``event``."""
    assert load.stdout is not None
    box: list[dict[str, Any]] = []

    def read() -> None:
        assert load.stdout is not None
        for line in load.stdout:
            with contextlib.suppress(json.JSONDecodeError):
                message = json.loads(line)
                if message.get("event") == event:
                    box.append(message)
                    return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if not box:
        load.kill()
        stderr = load.stderr.read() if load.stderr else ""
        raise SystemExit(f"load generator gave no {event!r}: {stderr[-2000:]}")
    return box[0]


def _py_spy(pid: int, server: Quire | Reference) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy", path=str(VENV_BIN)) or shutil.which("py-spy")
    if spy is None or not isinstance(server, Quire):
        return None
    out = server.var_dir / "py-spy.txt"
    print(f"  profiling worker {pid} with py-spy into {out}", file=sys.stderr)
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(SECONDS)),
            "--format",
            "raw",
            "--rate",
            "50",
            "--output",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _finish_py_spy(spy: subprocess.Popen[bytes]) -> None:
    try:
        spy.wait(timeout=60)
    except subprocess.TimeoutExpired:
        spy.kill()


def _summarise_profile(path: Path, top: int = 30) -> str:
    """Inclusive and self shares of the sampled (on-CPU) stacks, biggest first."""
    total = 0
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n
    if not total:
        return "(empty profile)"

    def table(counts: dict[str, int]) -> str:
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        return "\n".join(f"{100 * n / total:5.1f}%  {frame}" for frame, n in ranked)

    return f"{total} on-CPU samples\n-- inclusive --\n{table(inclusive)}\n-- self --\n{table(own)}"


# --------------------------------------------------------------------------- report


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "—"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _verdict(cases: list[Case]) -> tuple[str, bool]:
    at = {(c.server, c.editors): c for c in cases}
    quire, ref = at.get((Quire.name, GOAL_N)), at.get((Reference.name, GOAL_N))
    if quire is None:
        return (f"The goal is judged at {GOAL_N} editors, which this run did not measure.", False)
    full = quire.received == quire.expected and quire.expected > 0
    fast = quire.p99_ms < GOAL_P99_MS
    if ref is None:
        versus, beats = "the reference server was not measured", False
    else:
        beats = quire.p99_ms <= ref.p99_ms and quire.delivered >= ref.delivered
        versus = f"the reference server: p99 {_fmt(ref.p99_ms)} ms, {ref.delivered:.2f}% delivered"
    holds = full and fast and beats
    head = "**The goal holds**" if holds else "**The goal does not hold**"
    return (
        f"{head}: at {GOAL_N} editors Quire's p99 is {_fmt(quire.p99_ms)} ms "
        f"(goal: under {GOAL_P99_MS:.0f} ms) with {quire.delivered:.2f}% delivered "
        f"(goal: 100%); {versus}.",
        holds,
    )


def _profile_markdown(path: Path, top: int = 12) -> str:
    """The Quire worker's on-CPU profile, by live-layer function (inclusive share)."""
    total = 0
    inclusive: dict[str, int] = {}
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        total += int(count)
        for frame in {f for f in stack.split(";") if "app/live/" in f}:
            inclusive[frame] = inclusive.get(frame, 0) + int(count)
    if not total:
        return ""
    ranked = sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]
    rows = "\n".join(f"| `{frame}` | {100 * n / total:.1f}% |" for frame, n in ranked)
    return f"""
Where Quire's worker spends its CPU at {max(SIZES)} editors (py-spy, {total} on-CPU samples
at 50 Hz, `scripts/bench live --profile`; inclusive share of the sampled time, live
layer only):

| Function | Share |
|---|---:|
{rows}
"""


def report(
    cases: list[Case], seconds: float, idle_load: float, profile: Path | None = None
) -> tuple[str, bool]:
    rows = []
    for c in cases:
        extra = []
        if len(set(c.lengths)) > 1:
            extra.append(f"texts still differ at the end (updates in flight; lengths {c.lengths})")
        failed = c.editors - c.connected
        if failed:
            why = sorted(
                {
                    x.get("reason") or str(x.get("code"))
                    for x in c.close_codes
                    if isinstance(x, dict)
                }
            )
            extra.append(f"{failed} of {c.editors} could not join ({'; '.join(why)})")
        if c.closed > failed:
            extra.append(f"{c.closed - failed} sockets closed during the run")
        extra += [f"{k}: {v}" for k, v in c.notes.items() if v]
        rows.append(
            f"| {c.server} | {c.editors} | {_fmt(c.p50_ms)} | {_fmt(c.p99_ms)} | {_fmt(c.max_ms)} "
            f"| {c.delivered:.2f}% | {_fmt(c.server_cpu)}% | {_fmt(c.load_cpu)}% "
            f"| {'; '.join(extra) or ''} |"
        )
    verdict, holds = _verdict(cases)
    body = f"""## Live editing: {max(SIZES)} editors in one room (`scripts/bench live`)

N simulated editors join ONE room (one document file) over the y-websocket protocol;
each inserts a few characters at a random position once a second and sends an
awareness cursor update every {AWARENESS_SECONDS:.0f} s, for {SECONDS:.0f} s. Latency is from a
sender's edit to its arrival at every other editor; delivered is receptions (within
the run and {DRAIN_SECONDS:.0f} s of drain) / (edits sent × (N − 1)); CPU is % of one core
over the sending period (server: `/proc/<pid>/stat` utime + stime of the serving
process; load: all load-generator processes together). Goal (issue 4): at
{GOAL_N} editors, p99 under {GOAL_P99_MS:.0f} ms with 100% delivered, at least as good as the
reference server.

- Measured: {today()}, source {source_version()}
- Machine: {machine()}; load average {idle_load:.2f} before the run,
  {load_average()} at its end. Server and load generator share these CPUs.
- Quire: gunicorn, ONE gevent worker (`WEB_CONCURRENCY=1`, `deploy/gunicorn.conf.py`),
  embedded default (SQLite journal, no Redis); live settings at their defaults
  (30 ms broadcast window, 2 s / 10 s commits) except
  `LIVE_MAX_CONNECTIONS_PER_ROOM`, raised to admit every editor. Every editor
  authenticates with a bearer token (one user).
- Reference: npm `@y/websocket-server` 0.1.1 with `yjs` 13.6.27, one node {_node_version()}
  process, in memory (no persistence); it relays every update and awareness change
  as it comes (no batching).
- Dataset: each case opens a fresh room seeded with the same
  {len(_seed_text().encode()) / 1024:.1f} KiB Markdown text (Quire: saved to the branch
  through the API and seeded by the server; reference: inserted by one client).
  Inserts are " " + a 5-letter stamp (the send time), so every receiver reads sender and
  send time from the update itself.
- Load generator: `bench/js/load.mjs`, raw y-websocket protocol over node `ws`
  (deflate offered, as browsers do), {PROCS} node processes per case (load CPU 100% = one core; {100 * PROCS}% = all
  {PROCS} saturated), editors joining
  {JOIN_CONCURRENCY} at a time before the clock starts. Each process keeps one `Y.Doc`
  (applies every update once, so edits land at real positions) and decodes every
  received update (memoised per process: the server sends the same bytes to every
  socket). It does not re-send received awareness as the stock `y-websocket` client
  does.
- Cost of the run: {seconds:.0f}s.

| Server | Editors | p50 ms | p99 ms | max ms | Delivered | Server CPU | Load CPU | Notes |
|---|---:|---:|---:|---:|---:|---:|---:|---|
{chr(10).join(rows)}

{verdict}
"""
    if profile is not None and profile.exists():
        body += _profile_markdown(profile)
    if idle_load > (os.cpu_count() or 1) * 0.5:
        body += (
            f"\n**Measured on a busy machine (load average {idle_load:.2f} before the run).** "
            "Other work competes with the servers and the load generator for the CPUs.\n"
        )
    return body, holds


def _node_version() -> str:
    try:
        return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def run(*, runs: int = 0, warmup: int = 0, write: bool = True, profile: bool = False) -> bool:
    del runs, warmup  # the page benchmarks' knobs
    _ensure_node()
    idle_load = os.getloadavg()[0]
    timer = Timer()
    cases: list[Case] = []
    with tempfile.TemporaryDirectory(prefix="quire-bench-live-") as tmp:
        var_dir = Path(tmp)
        servers: list[Quire | Reference] = []
        try:
            if "quire" in SERVERS:
                quire = Quire(var_dir, max(SIZES))
                quire.start()
                servers.append(quire)
            if "reference" in SERVERS:
                ref = Reference(var_dir)
                ref.start()
                servers.append(ref)
            for n in SIZES:
                for server in servers:
                    print(f"live: {server.name}, {n} editors ...", file=sys.stderr, flush=True)
                    case = run_case(server, n, profile=profile and n == max(SIZES))
                    cases.append(case)
                    print(
                        f"  p50 {_fmt(case.p50_ms)} ms, p99 {_fmt(case.p99_ms)} ms, "
                        f"delivered {case.delivered:.2f}% ({case.received}/{case.expected}), "
                        f"server CPU {_fmt(case.server_cpu)}%, load CPU {_fmt(case.load_cpu)}%, "
                        f"joined {case.connected}/{n}, closed {case.closed} {case.close_codes[:3]} "
                        f"{case.notes}",
                        file=sys.stderr,
                        flush=True,
                    )
                    time.sleep(3)  # let the room close (Quire commits when the last one leaves)
            (PROJECT_ROOT / "var" / "bench-live-py-spy.txt").unlink(missing_ok=True)
            if profile and (var_dir / "py-spy.txt").exists():
                keep = PROJECT_ROOT / "var" / "bench-live-py-spy.txt"
                keep.parent.mkdir(exist_ok=True)
                shutil.copy(var_dir / "py-spy.txt", keep)
                print(f"py-spy profile (raw, collapsed stacks): {keep}", file=sys.stderr)
                print(_summarise_profile(keep), file=sys.stderr)
        finally:
            for server in servers:
                server.stop()
    spied = PROJECT_ROOT / "var" / "bench-live-py-spy.txt"
    body, holds = report(cases, timer.seconds, idle_load, spied if profile else None)
    print(body)
    if write:
        print(f"wrote {write_section('live', body)}", file=sys.stderr)
    return holds
