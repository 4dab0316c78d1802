"""A synthetic but plausible history of product use, for benchmarks and demos.

``flask --app app analytics seed --events 1000000`` creates about 5,000 users,
their documents and memberships, visits, a million events over 90 days and an
enrolment in the empty-document experiment, then refreshes the rollups. Rows go
in with PostgreSQL's COPY or SQLite's ``executemany`` in large chunks; a million
events take well under a minute.

Seeded accounts get an unusable password hash (nobody can sign in as them) and
``@seed.invalid`` addresses (a reserved top-level domain: mail never leaves).
The numbers are random but reproducible (``--seed``), shaped like real use:
most activity by a minority of people, sessions of a few events, more during
working hours, activation steps in their natural order.
"""

from __future__ import annotations

import itertools
import json
import random
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from flask.cli import with_appcontext
from sqlalchemy import text
from sqlalchemy.engine import Engine

from app.analytics import rollups

UNUSABLE_PASSWORD = "!seeded-account-no-password"
#: In a session, what people do next (name, weight); page views dominate, as in real use.
SESSION_ACTIONS: tuple[tuple[str, float], ...] = (
    ("page_view", 52),
    ("document_opened", 18),
    ("commit_made", 11),
    ("live_session_joined", 5),
    ("branch_created", 2.0),
    ("mr_opened", 1.6),
    ("mr_reviewed", 1.4),
    ("mr_approved", 1.0),
    ("mr_merged", 1.0),
    ("git_clone", 1.2),
    ("git_push", 2.5),
    ("document_created", 1.5),
    ("release_tagged", 0.4),
    ("token_created", 0.2),
)
#: What people who never write do (the rest of SESSION_ACTIONS changes documents).
READ_ACTIONS = ("page_view", "document_opened", "git_clone")
#: The share of people who write (commit, branch, review ...) at all.
WRITERS = 0.6
#: Events whose properties carry the slug (as the product's merge-request code does).
BY_SLUG = {
    "branch_created",
    "mr_opened",
    "mr_reviewed",
    "mr_approved",
    "mr_merged",
    "release_tagged",
}
REFERRERS = (
    None,
    None,
    None,
    "www.google.com",
    "news.ycombinator.com",
    "github.com",
    "duckduckgo.com",
)
DEVICES = (("desktop", "Chrome", "Linux"), ("desktop", "Firefox", "Windows"),
           ("desktop", "Safari", "Mac OS X"), ("mobile", "Mobile Safari", "iOS"),
           ("mobile", "Chrome Mobile", "Android"), ("tablet", "Mobile Safari", "iOS"))  # fmt: skip
ROLES = ("viewer", "reviewer", "editor", "maintainer")


@dataclass
class SeedReport:
    users: int
    documents: int
    visits: int
    events: int
    assignments: int
    rolled: int
    seconds: float


def seed(
    engine: Engine,
    *,
    events: int = 1_000_000,
    users: int = 5_000,
    days: int = 90,
    documents: int | None = None,
    end: datetime | None = None,
    random_seed: int = 1,
    progress: Callable[[str], None] = lambda _: None,
) -> SeedReport:
    """Write the dataset through ``engine`` and refresh the rollups."""
    started = datetime.now(UTC)
    rng = random.Random(random_seed)
    end = end or datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    run = secrets.token_hex(3)
    dialect = engine.dialect.name
    with engine.begin() as conn:
        base_user = _next_id(conn, "users")
        base_doc = _next_id(conn, "documents")
        base_visit = _next_id(conn, "analytics_visits")
    # People: 30% were there before the window, the rest sign up during it.
    people = []
    for i in range(users):
        if rng.random() < 0.3:
            created = start - timedelta(days=rng.uniform(1, 365))
        else:
            created = start + timedelta(seconds=rng.uniform(0, days * 86400 - 3600))
        activity = rng.paretovariate(1.6)  # a few heavy users, many light ones
        writes = rng.random() < WRITERS  # the others only read and clone
        people.append((base_user + i, created, activity, writes))
    user_rows = [
        (uid, f"seed{run}-{uid}", f"seed{run}-{uid}@seed.invalid", "", UNUSABLE_PASSWORD,
         False, True, created)
        for uid, created, *_ in people
    ]  # fmt: skip
    n_docs = documents if documents is not None else max(1, users // 5)
    doc_rows = []
    for i in range(n_docs):
        owner = people[rng.randrange(len(people))]
        created = max(owner[1], start - timedelta(days=30)) + timedelta(hours=rng.uniform(0, 48))
        doc_id = base_doc + i
        doc_rows.append(
            (doc_id, secrets.token_hex(16), f"seed{run}-doc-{doc_id}", f"Seeded document {doc_id}",
             owner[0], "private", "main", created, created)
        )  # fmt: skip
    membership_rows = []
    for doc in doc_rows:
        for member in rng.sample(people, k=min(len(people), rng.randint(0, 4))):
            if member[0] != doc[4]:
                membership_rows.append((doc[0], member[0], rng.choice(ROLES), doc[7]))
    membership_rows = list({(m[0], m[1]): m for m in membership_rows}.values())
    slugs = {d[0]: d[2] for d in doc_rows}
    # People mostly work on their own documents and those they are members of.
    docs_of: dict[int, list[int]] = defaultdict(list)
    for doc in doc_rows:
        docs_of[doc[4]].append(doc[0])
    for doc_id, member_id, _, _ in membership_rows:
        docs_of[member_id].append(doc_id)
    doc_ids = [d[0] for d in doc_rows]

    progress(f"{len(user_rows)} users, {len(doc_rows)} documents")
    visit_rows: list[tuple[Any, ...]] = []
    event_rows: list[tuple[Any, ...]] = []
    person_weights = list(itertools.accumulate(p[2] for p in people))
    names = [a for a, _ in SESSION_ACTIONS]
    name_weights = list(itertools.accumulate(w for _, w in SESSION_ACTIONS))
    reads = [a for a, _ in SESSION_ACTIONS if a in READ_ACTIONS]
    read_weights = list(itertools.accumulate(w for a, w in SESSION_ACTIONS if a in READ_ACTIONS))
    signed_in_window = [p for p in people if p[1] >= start]
    # Sign-ups first: the start of every new person's story.
    for uid, created, *_ in signed_in_window:
        event_rows.append((None, uid, None, "signed_up", "{}", created))
    assignment_rows = []
    visit_id = base_visit
    while len(event_rows) < events:
        anonymous = rng.random() < 0.12
        person = None if anonymous else rng.choices(people, cum_weights=person_weights)[0]
        earliest = max(start, person[1]) if person else start
        span = (end - earliest).total_seconds()
        if span <= 600:
            continue
        # Working hours are busier: a second draw for night-time sessions.
        moment = earliest + timedelta(seconds=rng.uniform(0, span - 600))
        if moment.hour < 7 and rng.random() < 0.6:
            moment = earliest + timedelta(seconds=rng.uniform(0, span - 600))
        uid = person[0] if person else None
        visitor = secrets.token_urlsafe(12)
        device = rng.choice(DEVICES)
        referrer = rng.choice(REFERRERS)
        visit_rows.append(
            (visit_id, secrets.token_urlsafe(18), visitor, uid, "192.0.2.0", None,
             f"https://{referrer}/" if referrer else None, referrer, "/", device[2], device[1],
             device[0], moment, moment)
        )  # fmt: skip
        length = min(events - len(event_rows), max(1, int(rng.expovariate(1 / 7))))
        own = docs_of.get(uid) if uid is not None else None
        doc = rng.choice(own) if own and rng.random() < 0.85 else rng.choice(doc_ids)
        for _ in range(length):
            moment += timedelta(seconds=rng.expovariate(1 / 90))
            if moment >= end:
                break
            if anonymous:
                name = "page_view"
            elif person[3]:
                name = rng.choices(names, cum_weights=name_weights)[0]
            else:
                name = rng.choices(reads, cum_weights=read_weights)[0]
            if name == "live_session_joined":
                props = {"document_id": doc}
                event_rows.append((visit_id, uid, visitor, name, json.dumps(props), moment))
                seconds = int(rng.expovariate(1 / 600)) + 5
                name, props = "live_session_ended", {"document_id": doc, "seconds": seconds}
                moment += timedelta(seconds=seconds)
            elif name in BY_SLUG:
                props = {"document": slugs[doc]}
            elif name == "page_view":
                props = {"path": f"/d/{slugs[doc]}"}
            elif name == "commit_made":
                props = {"document_id": doc, "source": rng.choice(("web", "live", "live", "git"))}
            elif name in ("token_created",):
                props = {}
            else:
                props = {"document_id": doc}
            event_rows.append((visit_id, uid, visitor, name, json.dumps(props), moment))
            if len(event_rows) >= events:
                break
        visit_id += 1
    progress(f"{len(visit_rows)} visits, {len(event_rows)} events generated")
    # The empty-document experiment: people who signed up during the window, exposed
    # an hour after sign-up. Writers commit anyway; the second variant turns a few more
    # readers into writers than the first.
    for uid, created, _, writes in signed_in_window:
        exposed = created + timedelta(hours=1)
        if exposed >= end:
            continue
        variant = "write_together" if rng.random() < 0.5 else "start_writing"
        assignment_rows.append(("empty_document_cta", variant, uid, None, exposed, exposed))
        if not writes and rng.random() < (0.12 if variant == "write_together" else 0.04):
            extra = exposed + timedelta(minutes=rng.uniform(1, 600))
            if extra < end:
                props = json.dumps({"document_id": rng.choice(doc_ids), "source": "web"})
                event_rows.append((None, uid, None, "commit_made", props, extra))
    with engine.begin() as conn:
        _insert(conn, dialect, "users",
                ("id", "username", "email", "display_name", "password_hash", "is_admin",
                 "is_active", "created_at"), user_rows)  # fmt: skip
        _insert(conn, dialect, "documents",
                ("id", "repo_id", "slug", "title", "owner_id", "visibility", "default_branch",
                 "created_at", "updated_at"), doc_rows)  # fmt: skip
        _insert(conn, dialect, "memberships",
                ("document_id", "user_id", "role", "created_at"), membership_rows)  # fmt: skip
        progress("users and documents written")
        _insert(conn, dialect, "analytics_visits",
                ("id", "visit_token", "visitor_token", "user_id", "ip", "user_agent", "referrer",
                 "referring_domain", "landing_page", "os", "browser", "device_type",
                 "started_at", "last_seen_at"), visit_rows)  # fmt: skip
        progress("visits written")
        _insert(conn, dialect, "analytics_events",
                ("visit_id", "user_id", "visitor_token", "name", "properties", "time"),
                event_rows)  # fmt: skip
        progress("events written")
        _insert(conn, dialect, "analytics_experiment_assignments",
                ("experiment", "variant", "user_id", "visitor_token", "assigned_at",
                 "exposed_at"), assignment_rows)  # fmt: skip
        if dialect == "postgresql":
            for table in ("users", "documents", "analytics_visits"):
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                        f" (SELECT MAX(id) FROM {table}))"
                    )
                )
            conn.execute(text("ANALYZE"))
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        rolled = rollups.refresh(session, check_every=float("inf"))
    if dialect == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    return SeedReport(
        users=len(user_rows),
        documents=len(doc_rows),
        visits=len(visit_rows),
        events=len(event_rows),
        assignments=len(assignment_rows),
        rolled=rolled,
        seconds=(datetime.now(UTC) - started).total_seconds(),
    )


def _next_id(conn: Any, table: str) -> int:
    return int(conn.execute(text(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}")).scalar())


def _insert(
    conn: Any, dialect: str, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]
) -> None:
    rows = list(rows)
    if not rows:
        return
    if dialect == "postgresql":
        raw = conn.connection.driver_connection  # psycopg 3: COPY is the fast path
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in columns)
    raw = conn.connection.driver_connection
    statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
    for i in range(0, len(rows), 50_000):
        chunk = [tuple(_sqlite_value(v) for v in row) for row in rows[i : i + 50_000]]
        raw.executemany(statement, chunk)


def _sqlite_value(value: Any) -> Any:
    """What SQLAlchemy's UTCDateTime would store on SQLite: naive UTC text."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


@click.command("seed")
@click.option("--events", default=1_000_000, show_default=True, help="Events to create.")
@click.option("--users", default=5_000, show_default=True, help="People to create.")
@click.option("--days", default=90, show_default=True, help="Days of history, ending now.")
@click.option("--seed", "random_seed", default=1, show_default=True, help="Random seed.")
@with_appcontext
def seed_command(events: int, users: int, days: int, random_seed: int) -> None:
    """Create a synthetic history of use (users, documents, visits, events)."""
    from app import db

    if events < 1 or users < 1 or days < 1:
        raise click.BadParameter("events, users and days must be positive")
    report = seed(
        db.get_db().engine,
        events=events,
        users=users,
        days=days,
        random_seed=random_seed,
        progress=click.echo,
    )
    click.echo(
        f"seeded {report.users} users, {report.documents} documents, {report.visits} visits, "
        f"{report.events} events, {report.assignments} experiment participants "
        f"in {report.seconds:.1f} s"
    )
