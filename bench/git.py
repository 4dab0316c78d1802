"""``scripts/bench git``: clone a 10,000-commit document through Quire and through git.

Quire runs as in production (gunicorn, gevent worker, ``deploy/gunicorn.conf.py``); the
baseline is ``git http-backend`` behind a minimal CGI host (:mod:`bench.cgi_host`)
serving the very same repository directory. Both are cloned with the same git client
(protocol v2, ``--bare``, into a fresh directory each time), alternating Quire and the
baseline, five timed runs each after one untimed run. The ratio is
median(Quire) / median(baseline); the goal is 1.2 or lower.

This benchmark times whole clones over HTTP, unlike the in-process page benchmarks;
``--runs``/``--warmup`` of ``scripts/bench`` are for those and are ignored here.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from app.config import PROJECT_ROOT
from bench.common import Timer, load_average, machine, source_version, today, write_section

COMMITS = 10_000
RUNS = 5
GOAL = 1.2
PARAGRAPHS = 40


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server for {url} did not start") from None
            time.sleep(0.1)


def _fast_import_stream(commits: int) -> bytes:
    """``git fast-import`` input: ``commits`` edits of one Markdown document."""
    paragraphs = [
        f"Paragraph {p}: the quick brown fox jumps over the lazy dog, version 0." * 2
        for p in range(PARAGRAPHS)
    ]
    out = []
    when = 1_700_000_000
    for i in range(1, commits + 1):
        p = (i - 1) % PARAGRAPHS
        paragraphs[p] = (
            f"Paragraph {p}: the quick brown fox jumps over the lazy dog, version {i}." * 2
        )
        body = ("# Benchmark\n\n" + "\n\n".join(paragraphs) + "\n").encode()
        message = f"Edit paragraph {p} ({i})\n".encode()
        out.append(
            b"commit refs/heads/main\n"
            + f"committer Bench <bench@example.com> {when + i * 600} +0000\n".encode()
            + b"data %d\n%s" % (len(message), message)
            + b"M 100644 inline document.md\n"
            + b"data %d\n%s\n" % (len(body), body)
        )
    return b"".join(out)


def _build(repo: Path) -> None:
    """Replace the document's history with ``COMMITS`` commits, then gc as an admin would."""
    subprocess.run(
        ["git", "fast-import", "--quiet", "--force"],
        input=_fast_import_stream(COMMITS),
        cwd=repo,
        check=True,
    )
    subprocess.run(["git", "gc", "-q"], cwd=repo, check=True)


def _clone_seconds(url: str, dest: Path, env: dict[str, str]) -> float:
    shutil.rmtree(dest, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run(
        ["git", "-c", "protocol.version=2", "clone", "-q", "--bare", url, str(dest)],
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def run(*, runs: int = 0, warmup: int = 0, write: bool = True, profile: bool = False) -> bool:
    del runs, warmup, profile  # whole-clone timings: see the module docstring
    from app import create_app, db
    from app.accounts.services import create_user
    from app.documents import services
    from app.migrate import upgrade

    total = Timer()
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="quire-bench-git-") as tmp:
        root = Path(tmp)
        url = f"sqlite:///{root / 'quire.db'}"
        upgrade(url)
        config = {
            "SECRET_KEY": "bench-" + secrets.token_hex(8),
            "DATABASE_URL": url,
            "REPOS_ROOT": root / "repos",
            "VAR_DIR": root,
            "RATELIMIT_STORAGE_URI": "memory://",
            "PASSWORD_HASH_PROFILE": "cheapest",
            "LOG_LEVEL": "WARNING",
        }
        app = create_app(config)
        with app.app_context():
            user = create_user("bench", "bench@example.com", "bench password")
            document = services.create_document(user, "Clone Bench", visibility="public")
            slug, repo_id = document.slug, document.repo_id
            db.get_db().remove()
        app.extensions["quire.db"].engine.dispose()
        repo = root / "repos" / repo_id[:2] / f"{repo_id}.git"
        print(f"git: building {COMMITS:,} commits…")
        build = Timer()
        _build(repo)
        size = sum(f.stat().st_size for f in repo.rglob("*") if f.is_file())
        print(f"  built in {build.seconds:.1f}s, repository {size / 1e6:.1f} MB after gc")

        quire_port, cgi_port = _free_port(), _free_port()
        env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(quire_port),
            "DATABASE_URL": url,
            "REPOS_ROOT": str(root / "repos"),
            "QUIRE_VAR_DIR": str(root),
            "SECRET_KEY": config["SECRET_KEY"],
            "ACCESS_LOG": str(root / "access.log"),
            "LOG_LEVEL": "WARNING",
        }
        quire = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "--config",
                "deploy/gunicorn.conf.py",
                "app:create_app()",
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        cgi = subprocess.Popen(
            [sys.executable, "-m", "bench.cgi_host", str(cgi_port), str(repo.parent)],
            cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_up(f"http://127.0.0.1:{quire_port}/up", quire)
            baseline_url = f"http://127.0.0.1:{cgi_port}/{repo.name}"
            _wait_up(f"{baseline_url}/info/refs?service=git-upload-pack", cgi)
            urls = {"quire": f"http://127.0.0.1:{quire_port}/{slug}.git", "baseline": baseline_url}
            client_env = {
                "HOME": str(root),
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "GIT_TERMINAL_PROMPT": "0",
                "GIT_CONFIG_NOSYSTEM": "1",
            }
            times: dict[str, list[float]] = {"quire": [], "baseline": []}
            for name, clone_url in urls.items():  # untimed: warm caches, check both work
                _clone_seconds(clone_url, root / f"warm-{name}", client_env)
            print(f"git: timing {RUNS} clones each, alternating…")
            for i in range(RUNS):
                for name, clone_url in urls.items():
                    times[name].append(_clone_seconds(clone_url, root / f"{name}-{i}", client_env))
            count = subprocess.run(
                ["git", "rev-list", "--count", "HEAD"],
                cwd=root / "quire-0",
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        finally:
            for proc in (quire, cgi):
                proc.terminate()
                proc.wait(20)
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["quire"] / medians["baseline"]
    ok = ratio <= GOAL
    rows = "\n".join(
        f"| {label} | {medians[name] * 1000:.0f} | "
        f"{', '.join(f'{t * 1000:.0f}' for t in times[name])} |"
        for name, label in (
            ("quire", "Quire (gunicorn + gevent worker)"),
            ("baseline", "`git http-backend` behind a minimal CGI host"),
        )
    )
    table = f"""## Clone over HTTP (`scripts/bench git`)

Does cloning through Quire cost about what cloning through git's own HTTP server
costs? One public document of {int(count):,} commits (`git fast-import`, then `git gc`,
{size / 1e6:.1f} MB on disk), cloned `--bare` with protocol v2 by the git CLI over
loopback, {RUNS} timed runs each after one untimed run, alternating the two servers.
Both serve the same repository directory. Goal: median(Quire) / median(baseline)
≤ {GOAL}.

- Measured: {today()}, source {source_version()}
- Machine: {machine()}; load average {load_before} before, {load_average()} after
- Total benchmark time: {total.seconds:.0f} s

| server | median (ms) | runs (ms) |
| --- | ---: | --- |
{rows}

**Ratio: {ratio:.2f}** ({"meets" if ok else "misses"} the goal of ≤ {GOAL}).
"""
    print(table)
    if write:
        print(f"git: wrote {write_section('git', table)}")
    if not ok:
        print(f"git: FAILED, the ratio is above {GOAL}")
    return ok
