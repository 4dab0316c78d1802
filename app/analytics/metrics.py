"""Product metrics from the rollups and the events: engagement, features, retention,
the product's success metrics and usage reporting.

Every function takes the SQL session and a :class:`~app.analytics.periods.Period`
(local days in a time zone) and returns plain data that the pages, the CSV export
and the JSON API all render. Distinct-user figures come from the quarter-hour
rollups (:mod:`app.analytics.rollups`), so they cost the same whatever the number
of raw events; the few figures that need event properties (documents) read the
events through the ``(name, time)`` index.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.analytics import buckets
from app.analytics.periods import Period, day_number, week_start

#: The key actions the product tracks on the server (and page views from the script).
KEY_ACTIONS = (
    "signed_up",
    "logged_in",
    "document_created",
    "document_opened",
    "live_session_joined",
    "live_session_ended",
    "commit_made",
    "branch_created",
    "mr_opened",
    "mr_reviewed",
    "mr_approved",
    "mr_merged",
    "release_tagged",
    "git_clone",
    "git_push",
    "token_created",
)
#: Events that change a document (an "editor" is someone who did one of these).
EDIT_ACTIONS = ("commit_made", "live_session_joined", "git_push", "branch_created", "mr_opened")
#: Collaborative documents that use any of these use Git the way Quire intends.
STRUCTURE_ACTIONS = ("branch_created", "mr_opened", "release_tagged")


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _in(names: tuple[str, ...] | list[str], prefix: str) -> tuple[str, dict[str, str]]:
    params = {f"{prefix}{i}": n for i, n in enumerate(names)}
    return "(" + ", ".join(f":{k}" for k in params) + ")", params


# --- engagement -----------------------------------------------------------------------


@dataclass
class Engagement:
    dau: int
    wau: int
    mau: int
    #: Active users each local day of the period, zero-filled: (day, users, events).
    series: list[tuple[date, int, int]]
    active_users: int  # distinct users over the whole period

    @property
    def stickiness(self) -> float | None:
        """DAU/MAU: the share of the month's users who came on the last day."""
        return self.dau / self.mau if self.mau else None


def distinct_active(session: Session, period: Period) -> int:
    low, high = period.slot_range
    return int(
        session.execute(
            text(
                "SELECT COUNT(*) FROM (SELECT user_id FROM analytics_active_slots"
                " WHERE slot >= :low AND slot < :high GROUP BY user_id) x"
            ),
            {"low": low, "high": high},
        ).scalar()
        or 0
    )


def engagement(session: Session, period: Period) -> Engagement:
    """DAU (the period's last day), WAU and MAU (the 7 and 30 days ending then)."""
    days = buckets.buckets(session, period, "day")
    series = [(b.start, b.users, b.events) for b in days]
    return Engagement(
        dau=series[-1][1],
        wau=distinct_active(session, period.trailing(7)),
        mau=distinct_active(session, period.trailing(30)),
        series=series,
        active_users=distinct_active(session, period),
    )


# --- features -------------------------------------------------------------------------


@dataclass
class FeatureRow:
    bucket: date
    name: str
    events: int
    users: int


def feature_usage(session: Session, period: Period, grain: str = "week") -> list[FeatureRow]:
    """Events and distinct signed-in users per feature per day, week or month, zero-filled.

    Weeks (Monday to Sunday) and months are whole calendar ones overlapping the
    period, so that each row means the same thing whatever range is picked.
    """
    found = buckets.buckets(session, period, grain)
    names = sorted({n for b in found for n in b.features} | set(KEY_ACTIONS))
    return [
        FeatureRow(b.start, name, *b.features.get(name, (0, 0))) for b in found for name in names
    ]


@dataclass
class Adoption:
    name: str
    events: int
    users: int
    active_users: int

    @property
    def share(self) -> float | None:
        return self.users / self.active_users if self.active_users else None


def adoption(session: Session, period: Period) -> list[Adoption]:
    """Per feature: the share of the period's active users who used it at least once."""
    low, high = period.slot_range
    active = distinct_active(session, period)
    rows = session.execute(
        text(
            "SELECT name, SUM(n), SUM(CASE WHEN user_id <> 0 THEN 1 ELSE 0 END) FROM"
            " (SELECT name, user_id, SUM(events) AS n FROM analytics_feature_slots"
            "  WHERE slot >= :low AND slot < :high GROUP BY name, user_id) x GROUP BY name"
        ),
        {"low": low, "high": high},
    ).all()
    found = {n: (int(e), int(u)) for n, e, u in rows}
    names = sorted(set(found) | set(KEY_ACTIONS))
    result = [Adoption(n, *found.get(n, (0, 0)), active_users=active) for n in names]
    return sorted(result, key=lambda a: (-a.users, -a.events, a.name))


# --- retention ------------------------------------------------------------------------


@dataclass
class Cohort:
    week: date  # the Monday of the sign-up week (local)
    size: int
    #: Users active in week k after signing up (k = 0 is the sign-up week itself);
    #: None for weeks that begin after the period's last day (unknown, not zero).
    returned: list[int | None] = field(default_factory=list)

    def share(self, k: int) -> float | None:
        value = self.returned[k]
        return None if value is None or not self.size else value / self.size


def retention(session: Session, period: Period) -> list[Cohort]:
    """Weekly cohorts of the users who signed up in the period, by return week.

    Return means any tracked activity in that local week. Cells for weeks that
    start after the period's last day are ``None`` (not zero: they are unknown).
    """
    dialect = _dialect(session)
    low, high = period.slot_range
    from app.analytics.rollups import slot_sql

    user_slot = slot_sql(dialect, "created_at")
    signed = period.bucket_sql("u.s", "week")
    active = period.bucket_sql("a.slot", "week")
    params = {"start": period.utc_start, "end": period.utc_end, "low": low, "high": high}
    users = (
        f"SELECT id, {user_slot} AS s FROM users WHERE created_at >= :start AND created_at < :end"
    )
    sizes = session.execute(
        text(f"SELECT {signed} AS c, COUNT(*) FROM ({users}) u GROUP BY {signed}"), params
    ).all()
    cells = session.execute(
        text(
            "SELECT c, w, COUNT(*) FROM"
            f" (SELECT {signed} AS c, {active} AS w, a.user_id"
            f"  FROM analytics_active_slots a JOIN ({users}) u ON u.id = a.user_id"
            f"  WHERE a.slot >= :low AND a.slot < :high GROUP BY {signed}, {active}, a.user_id)"
            " x GROUP BY c, w"
        ),
        params,
    ).all()
    returned: dict[tuple[int, int], int] = {(int(c), int(w)): int(n) for c, w, n in cells}
    last_week = week_start(period.end)
    sizes_by_week = {period.bucket_start(int(c), "week"): int(n) for c, n in sizes}
    cohorts = []
    for start in period.buckets("week"):
        if start not in sizes_by_week:
            continue
        number = (day_number(start) + 3) // 7  # the same week number the SQL computes
        row: list[int | None] = []
        k = 0
        while start + timedelta(weeks=k) <= last_week:
            row.append(returned.get((number, number + k), 0))
            k += 1
        cohorts.append(Cohort(start, sizes_by_week[start], row))
    width = max((len(c.returned) for c in cohorts), default=0)
    for cohort in cohorts:
        cohort.returned += [None] * (width - len(cohort.returned))
    return cohorts


# --- success metrics ------------------------------------------------------------------


@dataclass
class Success:
    collaborative_documents: int
    structured_documents: int  # collaborative ones that use branches, MRs or releases
    tracked_actions: list[str]
    live_sessions: int
    live_documents: int
    live_seconds: float

    @property
    def structured_share(self) -> float | None:
        if not self.collaborative_documents:
            return None
        return self.structured_documents / self.collaborative_documents

    @property
    def tracked_share(self) -> float:
        return len(self.tracked_actions) / len(KEY_ACTIONS)

    @property
    def sessions_per_document(self) -> float | None:
        return self.live_sessions / self.live_documents if self.live_documents else None


def success(session: Session, period: Period) -> Success:
    """The product's own targets, from what people actually did in the period.

    A document is collaborative when two or more people committed to it
    (``commit_made`` events name the author and the document). Events name their
    document by id (``document_id``) or by slug (``document``): both are resolved.
    """
    low, high = period.slot_range
    window = {"low": low, "high": high}
    # Authors per document: the one figure that needs people, so the one two-level count.
    authors = session.execute(
        text(
            "SELECT document, COUNT(*) FROM"
            " (SELECT document, user_id FROM analytics_document_slots"
            "  WHERE name = 'commit_made' AND slot >= :low AND slot < :high AND user_id <> 0"
            "  GROUP BY document, user_id) x"
            " GROUP BY document HAVING COUNT(*) >= 2"
        ),
        window,
    ).all()
    wanted = (*STRUCTURE_ACTIONS, "live_session_joined", "live_session_ended")
    names, name_params = _in(wanted, "n")
    others = session.execute(
        text(
            "SELECT name, document, SUM(events), SUM(seconds) FROM analytics_document_slots"
            f" WHERE name IN {names} AND slot >= :low AND slot < :high GROUP BY name, document"
        ),
        {**window, **name_params},
    ).all()
    ids = document_ids(session, {str(d) for d, _ in authors} | {str(d) for _, d, _, _ in others})
    collaborative = {ids[str(d)] for d, _ in authors if str(d) in ids}
    structured: set[int] = set()
    live_docs: set[int] = set()
    sessions = 0
    live_seconds = 0.0
    for name, d, count, secs in others:
        doc = ids.get(str(d))
        if name == "live_session_joined":
            sessions += int(count)
            if doc is not None:
                live_docs.add(doc)
        elif name == "live_session_ended":
            live_seconds += float(secs or 0.0)
        elif doc is not None:
            structured.add(doc)
    tracked = {
        name
        for day in buckets.buckets(session, period, "day")
        for name, (events, _) in day.features.items()
        if events
    }
    return Success(
        collaborative_documents=len(collaborative),
        structured_documents=len(collaborative & structured),
        tracked_actions=sorted(tracked & set(KEY_ACTIONS)),
        live_sessions=sessions,
        live_documents=len(live_docs),
        live_seconds=live_seconds,
    )


def document_ids(session: Session, keys: set[str]) -> dict[str, int]:
    """Document id per key, where a key is an id or a slug (current or former)."""
    result = {k: int(k) for k in keys if k.isdigit()}
    slugs = sorted(k for k in keys if not k.isdigit())
    for i in range(0, len(slugs), 500):
        marks, params = _in(slugs[i : i + 500], "s")
        for slug, doc in session.execute(
            text(
                f"SELECT slug, id FROM documents WHERE slug IN {marks}"
                f" UNION ALL SELECT old_slug, document_id FROM slug_aliases WHERE old_slug IN {marks}"
            ),
            params,
        ):
            result.setdefault(str(slug), int(doc))
    return result


# --- top lists ------------------------------------------------------------------------


def top_documents(session: Session, period: Period, limit: int = 20) -> list[dict[str, Any]]:
    """The most opened documents: opens, distinct signed-in readers, and the title."""
    low, high = period.slot_range
    rows = session.execute(
        text(
            "SELECT document, SUM(n) AS opens, SUM(CASE WHEN user_id = 0 THEN 0 ELSE 1 END) FROM"
            " (SELECT document, user_id, SUM(events) AS n FROM analytics_document_slots"
            "  WHERE slot >= :low AND slot < :high AND name = 'document_opened'"
            "  GROUP BY document, user_id) x"
            " GROUP BY document ORDER BY opens DESC, document LIMIT :limit"
        ),
        {"low": low, "high": high, "limit": limit},
    ).all()
    ids = document_ids(session, {str(d) for d, _, _ in rows if d is not None})
    titles: dict[int, tuple[str, str]] = {}
    if ids:
        marks, id_params = _in(sorted({str(i) for i in ids.values()}), "i")
        for i, slug, title in session.execute(
            text(f"SELECT id, slug, title FROM documents WHERE CAST(id AS TEXT) IN {marks}"),
            id_params,
        ):
            titles[int(i)] = (slug, title)
    result = []
    for d, opens, readers in rows:
        doc = ids.get(str(d)) if d is not None else None
        slug, title = titles.get(doc, ("", "(deleted document)")) if doc else ("", "(unknown)")
        result.append(
            {"document_id": doc, "slug": slug, "title": title, "opens": int(opens),
             "readers": int(readers)}
        )  # fmt: skip
    return result


BREAKDOWNS = ("referring_domain", "device_type", "browser", "os")


def visit_breakdowns(
    session: Session, period: Period, limit: int = 15
) -> dict[str, list[tuple[str, int]]]:
    """Visits per referring domain, device type, browser and OS: one scan of the visits."""
    columns = ", ".join(f"COALESCE({c}, '')" for c in BREAKDOWNS)
    rows = session.execute(
        text(
            f"SELECT {columns}, COUNT(*) FROM analytics_visits"
            f" WHERE started_at >= :start AND started_at < :end GROUP BY {columns}"
        ),
        {"start": period.utc_start, "end": period.utc_end},
    ).all()
    result = {}
    for i, column in enumerate(BREAKDOWNS):
        counts: dict[str, int] = defaultdict(int)
        for row in rows:
            counts[row[i] or "(none)"] += int(row[-1])
        result[column] = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return result


# --- usage reporting ------------------------------------------------------------------


@dataclass
class Usage:
    documents: int
    users: int
    total_bytes: int
    largest: list[tuple[str, str, int]]  # (slug, title, bytes), biggest first
    active_editors: int
    seats: list[tuple[str, int, int]]  # (role, memberships, distinct people)

    @property
    def bytes_per_document(self) -> float:
        return self.total_bytes / self.documents if self.documents else 0.0


def directory_size(path: Path) -> int:
    """Bytes of every file below ``path`` (a repository), without following links."""
    total = 0
    stack = [str(path)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
        except OSError:  # removed while we looked: it no longer takes space
            continue
    return total


def repository_sizes(session: Session, repos_root: Path) -> list[tuple[str, str, int]]:
    """(slug, title, bytes on disk) per document."""
    rows = session.execute(text("SELECT slug, title, repo_id FROM documents")).all()
    return [
        (slug, title, directory_size(Path(repos_root) / repo_id[:2] / f"{repo_id}.git"))
        for slug, title, repo_id in rows
    ]


def usage(session: Session, period: Period, repos_root: Path, *, largest: int = 20) -> Usage:
    """Documents, storage, active editors (in the trailing 30 days) and seats per role."""
    sizes = repository_sizes(session, repos_root)
    low, high = period.trailing(30).slot_range
    names, name_params = _in(EDIT_ACTIONS, "e")
    editors = session.execute(
        text(
            "SELECT COUNT(DISTINCT user_id) FROM analytics_feature_slots"
            f" WHERE slot >= :low AND slot < :high AND user_id <> 0 AND name IN {names}"
        ),
        {"low": low, "high": high, **name_params},
    ).scalar()
    seats: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for role, memberships, people in session.execute(
        text("SELECT role, COUNT(*), COUNT(DISTINCT user_id) FROM memberships GROUP BY role")
    ):
        seats[str(role)] = [int(memberships), int(people)]
    owners = session.execute(text("SELECT COUNT(*), COUNT(DISTINCT owner_id) FROM documents")).one()
    seats["owner"] = [int(owners[0]), int(owners[1])]
    order = ["owner", "maintainer", "editor", "reviewer", "viewer"]
    seat_rows = sorted(
        ((r, m, p) for r, (m, p) in seats.items()),
        key=lambda s: (order.index(s[0]) if s[0] in order else len(order), s[0]),
    )
    users = session.execute(text("SELECT COUNT(*) FROM users WHERE is_active")).scalar()
    return Usage(
        documents=len(sizes),
        users=int(users or 0),
        total_bytes=sum(s for _, _, s in sizes),
        largest=sorted(sizes, key=lambda s: -s[2])[:largest],
        active_editors=int(editors or 0),
        seats=seat_rows,
    )


def sign_ups(session: Session, period: Period) -> int:
    return int(
        session.execute(
            text("SELECT COUNT(*) FROM users WHERE created_at >= :start AND created_at < :end"),
            {"start": period.utc_start, "end": period.utc_end},
        ).scalar()
        or 0
    )


def event_total(engagement: Engagement) -> int:
    """Every event of the period (signed in or not), from the daily buckets."""
    return sum(events for _, _, events in engagement.series)
