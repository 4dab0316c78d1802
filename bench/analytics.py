"""Analytics dashboard: does every page render in under a second with 1,000,000 events?

Each backend (PostgreSQL, the production database, and SQLite, the embedded default)
gets two fresh databases seeded by :func:`app.analytics.seed.seed`: 10,000 events
(the baseline) and 1,000,000 events, over 90 days. PostgreSQL's are
``quire_bench_analytics`` (1M) and ``quire_bench_analytics_10k`` on 127.0.0.1:5432
(``QUIRE_BENCH_PG`` names another server), dropped and created afresh.

Every dashboard page and JSON endpoint is requested as a site admin through the
Flask test client (server time, no network), with the pages' default ranges. The
first request of each page is timed on its own ("first view": it also fills the
stored counts of closed days, weeks and months); then each page is timed
``runs`` times, round-robin. The target: median and 95th percentile under 1 s for
every page on PostgreSQL with 1,000,000 events.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter_ns

from sqlalchemy import create_engine, text

from app import db
from app.analytics.seed import seed
from bench.common import (
    Stats,
    Timer,
    bench_app,
    load_average,
    machine,
    source_version,
    today,
    write_section,
)

SIZES = (10_000, 1_000_000)
TARGET_MS = 1000.0
MAX_RUNS = 20
PASSWORD = "bench password"
PG_SERVER = os.environ.get("QUIRE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
PG_NAMES = {1_000_000: "quire_bench_analytics", 10_000: "quire_bench_analytics_10k"}

PAGES: dict[str, tuple[str, str]] = {
    "Overview (30 days)": ("/admin/analytics", 'data-kpi="dau"'),
    "Features (30 days, weekly)": ("/admin/analytics/features", "Feature adoption"),
    "Funnel (30 days)": ("/admin/analytics/funnel", "Activation funnel"),
    "Retention (12 weeks)": ("/admin/analytics/retention", "Weekly retention cohorts"),
    "Experiments": ("/admin/analytics/experiments", "empty_document_cta"),
    "Audience (30 days)": ("/admin/analytics/audience", "Top documents"),
    "Usage & capacity (90 days)": ("/admin/analytics/usage", "Capacity forecast"),
    "Success metrics (90 days)": ("/admin/analytics/success", "Success metrics"),
    "API engagement": ("/api/v1/admin/analytics/engagement", '"mau"'),
    "API funnel": ("/api/v1/admin/analytics/funnel", '"steps"'),
    "API experiments": ("/api/v1/admin/analytics/experiments", '"variants"'),
}


@dataclass
class Measured:
    backend: str
    events: int
    seed_seconds: float
    first: dict[str, float]  # ms of the first request per page
    stats: dict[str, Stats]


def _users_for(events: int) -> int:
    return max(50, events // 200)  # 5,000 people for a million events


def _postgres_url(events: int) -> str:
    name = PG_NAMES[events]
    admin = create_engine(
        f"{PG_SERVER}/postgres".replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{PG_SERVER}/{name}"


def measure(backend: str, events: int, root: Path, runs: int, warmup: int) -> Measured:
    url = (
        _postgres_url(events)
        if backend == "postgresql"
        else f"sqlite:///{root / f'analytics-{events}.db'}"
    )
    # The benchmark's own requests are not product use: analytics off.
    app = bench_app(url, root, WTF_CSRF_ENABLED=False, ANALYTICS_ENABLED=False)
    with app.app_context():
        from app.accounts.services import create_token, create_user

        admin = create_user("bench-admin", "bench@example.com", PASSWORD, admin=True)
        _, token = create_token(admin, "bench")
        print(f"analytics: seeding {events:,} events on {backend}…", flush=True)
        report = seed(db.get_db().engine, events=events, users=_users_for(events), days=90)
        print(f"  {report.events:,} events, {report.visits:,} visits in {report.seconds:.0f}s")
        db.get_db().remove()
    client = app.test_client()
    if (
        client.post("/login", data={"login": "bench-admin", "password": PASSWORD}).status_code
        != 302
    ):
        raise SystemExit("analytics: could not log in")
    headers = {"Authorization": f"Bearer {token}"}

    def get(url: str):  # noqa: ANN202
        return client.get(url, headers=headers if url.startswith("/api/") else None)

    first: dict[str, float] = {}
    for name, (page, marker) in PAGES.items():
        t0 = perf_counter_ns()
        response = get(page)
        first[name] = (perf_counter_ns() - t0) / 1e6
        body = response.get_data(as_text=True)
        if response.status_code != 200 or marker not in body:
            raise SystemExit(f"GET {page} -> {response.status_code}, expected {marker!r}")
        for _ in range(warmup):
            get(page)
    samples: dict[str, list[int]] = {name: [] for name in PAGES}
    for _ in range(runs):
        for name, (page, _marker) in PAGES.items():
            t0 = perf_counter_ns()
            get(page)
            samples[name].append(perf_counter_ns() - t0)
    with app.app_context():
        db.get_db().engine.dispose()
    return Measured(
        backend, events, report.seconds, first, {k: Stats.of(v) for k, v in samples.items()}
    )


def run(*, runs: int = 200, warmup: int = 20, write: bool = True, profile: bool = False) -> bool:
    runs, warmup = min(runs, MAX_RUNS), min(warmup, 2)
    total = Timer()
    load_before = load_average()
    results: dict[tuple[str, int], Measured] = {}
    with tempfile.TemporaryDirectory(prefix="quire-bench-analytics-") as tmp:
        for backend in ("postgresql", "sqlite"):
            for events in SIZES:
                results[(backend, events)] = measure(backend, events, Path(tmp), runs, warmup)
    load = f"{load_before} before, {load_average()} after"
    table, ok = _report(results, runs, warmup, total.seconds, load)
    print(table)
    if write:
        print(f"analytics: wrote {write_section('analytics', table)}")
    if not ok:
        print(f"analytics: FAILED, a page takes {TARGET_MS:.0f} ms or more")
    return ok


def _busy() -> str:
    """The load when it exceeds the CPU count, else ''."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return ""
    cpus = os.cpu_count() or 1
    return f"load average {load:.1f} on {cpus} CPUs" if load > cpus else ""


def _cell(stats: Stats) -> str:
    return f"{stats.median_ms:.0f} / {stats.p95_ms:.0f}"


def _report(
    results: dict[tuple[str, int], Measured], runs: int, warmup: int, seconds: float, load: str
) -> tuple[str, bool]:
    small, large = SIZES
    pg_small, pg_large = results[("postgresql", small)], results[("postgresql", large)]
    lite_small, lite_large = results[("sqlite", small)], results[("sqlite", large)]
    rows = []
    ok = True
    for name in PAGES:
        a, b = pg_small.stats[name], pg_large.stats[name]
        c, d = lite_small.stats[name], lite_large.stats[name]
        under = b.median_ms < TARGET_MS and b.p95_ms < TARGET_MS
        ok = ok and under
        rows.append(
            f"| {name} | {_cell(a)} | **{_cell(b)}**{'' if under else ' ✗'} "
            f"| {b.median_ms / a.median_ms:.1f} | {pg_large.first[name]:.0f} "
            f"| {_cell(c)} | {_cell(d)} | {d.median_ms / c.median_ms:.1f} "
            f"| {lite_large.first[name]:.0f} |"
        )
    slowest = max(PAGES, key=lambda n: pg_large.stats[n].p95_ms)
    verdict = (
        f"**Every page is under {TARGET_MS / 1000:.0f} s** on PostgreSQL with "
        f"{large:,} events (median and 95th percentile); the slowest is {slowest} "
        f"at {_cell(pg_large.stats[slowest])} ms."
        if ok
        else f"**Not every page is under {TARGET_MS / 1000:.0f} s** on PostgreSQL with "
        f"{large:,} events (marked ✗); the slowest is {slowest} at "
        f"{_cell(pg_large.stats[slowest])} ms."
    )
    busy = _busy()
    if busy:
        verdict += (
            f"\n\n**Measured on a busy machine ({busy}).** Other work running at the same "
            "time slows every page; rerun `scripts/bench analytics` on a quiet machine for "
            "figures without it."
        )
    table = f"""## Analytics dashboard: 1,000,000 events (`scripts/bench analytics`)

Does every analytics page render in under a second with a million events on
PostgreSQL? Server time per request (Flask test client, as a site admin, no
network), median / 95th percentile in milliseconds of {runs} timed requests per page
(after the first request and {warmup} untimed ones), round-robin. Baseline: the same
pages on {small:,} events in the same run; "ratio" is median({large:,}) /
median({small:,}). "First view" is the first request of each page after seeding,
which also stores the counts of closed days, weeks and months.

- Measured: {today()}, source {source_version()}
- Machine: {machine()}; load average {load}
- Dataset (`app.analytics.seed`, seed 1): 90 days; {_users_for(large):,} people for
  {large:,} events and {_users_for(small)} for {small:,} (30% signed up before the 90 days,
  Pareto-distributed activity, 60% of them writing and the rest only reading), one
  document per 5 people, sessions of about seven
  events (page views about half), 12% anonymous visits, the empty-document experiment
  for everyone who signed up in the window. PostgreSQL: `{PG_NAMES[large]}` and
  `{PG_NAMES[small]}` on 127.0.0.1:5432, seeded with COPY
  ({pg_large.seed_seconds:.0f}s for {large:,} events, rollups included); SQLite:
  a file, `executemany` ({lite_large.seed_seconds:.0f}s).
- Ranges: the pages' defaults, ending today, UTC (30 days; 12 weeks for retention;
  90 days for usage and success metrics).
- Cost of the run: {seconds:.0f}s.

| Page | PG {small:,} | PG {large:,} | ratio | PG first view | SQLite {small:,} | SQLite {large:,} | ratio | SQLite first view |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

{verdict}
"""
    return table, ok
