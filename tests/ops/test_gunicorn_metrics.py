"""Real gunicorn, two gevent workers: /metrics sums both workers' counts.

Also checks the JSON access log (one line per request, probes and scrapes left
out) and the multiprocess directory holding files of both worker pids.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.mmap_dict import MmapedDict

from tests.ops.test_metrics import sample

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One request over a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Connection": "close", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def requests_by_pid(directory: Path) -> dict[int, float]:
    """quire_http_requests_total per worker, read from prometheus_client's files."""
    counts: dict[int, float] = {}
    for path in directory.glob("counter_*.db"):
        pid = int(re.search(r"_(\d+)\.db$", path.name).group(1))
        for key, value, _timestamp, _pos in MmapedDict.read_all_values_from_file(str(path)):
            if json.loads(key)[1] == "quire_http_requests_total":
                counts[pid] = counts.get(pid, 0) + value
    return counts


@pytest.mark.slow
def test_metrics_sum_two_gunicorn_workers(tmp_path: Path):
    port = free_port()
    prom_dir = tmp_path / "prom"
    prom_dir.mkdir()
    (prom_dir / "counter_999999.db").write_bytes(b"stale file of a previous run")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SENTRY_", "PROMETHEUS_", "REDIS_", "DATABASE_"))
    }
    env.update(
        HOST="127.0.0.1",
        PORT=str(port),
        WEB_CONCURRENCY="2",
        DATABASE_URL=f"sqlite:///{tmp_path / 'quire.db'}",
        REPOS_ROOT=str(tmp_path / "repos"),
        QUIRE_VAR_DIR=str(tmp_path / "var"),
        SECRET_KEY="gunicorn-test-secret",
        PROMETHEUS_MULTIPROC_DIR=str(prom_dir),
        LOG_FORMAT="json",
        ACCESS_LOG="-",
    )
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    log = (tmp_path / "gunicorn.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            "deploy/gunicorn.conf.py",
            "app:create_app()",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if get(port, "/up")[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None, (tmp_path / "gunicorn.log").read_text()
            assert time.monotonic() < deadline, "gunicorn did not come up"
            time.sleep(0.1)
        assert not (prom_dir / "counter_999999.db").exists(), "stale files are emptied at start"

        sent = 0
        with ThreadPoolExecutor(16) as pool:
            while sent < 2000:
                statuses = list(pool.map(lambda _: get(port, "/login")[0], range(32)))
                assert statuses == [200] * 32
                sent += 32
                if len([n for n in requests_by_pid(prom_dir).values() if n > 0]) >= 2:
                    break
        per_pid = requests_by_pid(prom_dir)
        served = {pid: n for pid, n in per_pid.items() if n > 0}
        assert len(served) == 2, f"only {served} served after {sent} requests"
        assert sum(served.values()) == sent

        status, body = get(port, "/metrics")
        assert status == 200
        text = body.decode()
        assert sample(text, "quire_http_requests_total", route="/login", status="200") == sent
        assert sample(text, "quire_http_request_duration_seconds_count", route="/login") == sent
        assert sample(text, "quire_http_requests_in_progress") == 0
        # Both workers' resident memory, summed: more than either alone.
        assert sample(text, "quire_process_resident_memory_bytes") > 20_000_000
        assert sample(text, "quire_repos_volume_free_bytes") > 0
        print(f"\n{sent} requests over 2 workers {served}; /metrics sums {sent}")

        assert get(port, "/ready")[0] == 200
        status, _ = get(port, "/metrics", {"X-Forwarded-For": "203.0.113.1"})
        assert status == 200  # allowed by the peer address, not by a spoofable header
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
        log.close()

    lines = (tmp_path / "gunicorn.log").read_text().splitlines()
    access = [json.loads(x) for x in lines if '"logger": "gunicorn.access"' in x]
    assert len(access) == sent, "one access line per request, none for /up, /ready, /metrics"
    assert {a["path"] for a in access} == {"/login"}
    assert len({a["pid"] for a in access}) == 2
    assert all(re.fullmatch(r"[0-9a-f]{32}", a["request_id"]) for a in access)
    app_lines = [json.loads(x) for x in lines if '"logger": "quire.request"' in x]
    assert len(app_lines) == sent
    assert {a["request_id"] for a in app_lines} == {a["request_id"] for a in access}
    # gunicorn's own messages are JSON lines too.
    booting = [x for x in lines if "Booting worker" in x]
    assert len(booting) == 2 and all(json.loads(x)["logger"] == "gunicorn.error" for x in booting)
    # Dead workers' live gauges were marked dead (child_exit) after the shutdown.
    assert not list(prom_dir.glob("gauge_livesum_*.db"))
