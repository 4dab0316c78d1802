"""Distinct users and events per local day, week or month, kept once a bucket closes.

Why: a 90-day daily series or a weekly feature table counts distinct users over
hundreds of thousands of rollup rows; the same figures for past days never change.
A closed bucket (one that ended before now) is computed once per time zone and
stored in ``analytics_bucket_counts``; the rollup refresh deletes every stored
bucket that ends after the oldest event it adds, so a late event is never missed.
Open buckets (today, this week, this month) are always computed afresh.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.analytics import rollups
from app.analytics.periods import Period
from app.analytics.rollups import BucketCount, slot_of

ANY = ""  # the name of the row that counts any activity


@dataclass
class Bucket:
    start: date
    users: int = 0  # distinct signed-in users active in the bucket
    events: int = 0  # every event, signed in or not
    #: name → (events, distinct signed-in users)
    features: dict[str, tuple[int, int]] = field(default_factory=dict)


def tune(session: Session) -> None:
    """Give this transaction's sorts and hashes room in memory (PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL work_mem = '64MB'"))


def _next_start(start: date, grain: str) -> date:
    if grain == "day":
        return start + timedelta(days=1)
    if grain == "week":
        return start + timedelta(days=7)
    return date(start.year + (start.month == 12), start.month % 12 + 1, 1)


def buckets(
    session: Session, period: Period, grain: str, *, now: datetime | None = None
) -> list[Bucket]:
    """Every bucket of ``grain`` overlapping the period (whole weeks and months), in order."""
    now_slot = slot_of(now or datetime.now(UTC))
    starts = period.buckets(grain)
    zone = period.zone_name
    ends = {s: _next_start(s, grain) for s in starts}
    hi = {s: slot_of(period.local_midnight(ends[s])) for s in starts}
    result = {s: Bucket(s) for s in starts}
    stored = session.execute(
        text(
            "SELECT bucket, name, users, events FROM analytics_bucket_counts"
            " WHERE zone = :zone AND grain = :grain AND bucket >= :first AND bucket <= :last"
        ),
        {"zone": zone, "grain": grain, "first": starts[0], "last": starts[-1]},
    ).all()
    cached: set[date] = set()
    for start, name, users, events in stored:
        start = start if isinstance(start, date) else date.fromisoformat(str(start))
        if start not in result:
            continue
        if name == ANY:
            cached.add(start)
            result[start].users, result[start].events = int(users), int(events)
        else:
            result[start].features[name] = (int(events), int(users))
    missing = [s for s in starts if s not in cached and hi[s] <= now_slot]
    live = [s for s in starts if hi[s] > now_slot]
    if missing:
        mark = rollups.watermark(session)
        computed = _compute(session, period, grain, missing[0], ends[missing[-1]])
        rows = []
        for start in missing:
            bucket = computed.get(start, Bucket(start))
            result[start] = bucket
            rows.append(_row(zone, grain, start, ANY, bucket.users, bucket.events, hi[start]))
            rows += [
                _row(zone, grain, start, name, users, events, hi[start])
                for name, (events, users) in bucket.features.items()
            ]
        _store(session, rows, mark)
        tune(session)
    if live:
        computed = _compute(session, period, grain, live[0], ends[live[-1]])
        for start in live:
            result[start] = computed.get(start, Bucket(start))
    return [result[s] for s in starts]


def _compute(
    session: Session, period: Period, grain: str, first: date, end: date
) -> dict[date, Bucket]:
    """Count the buckets from ``first`` up to (not including) ``end`` from the rollups."""
    span = Period(first, end - timedelta(days=1), period.zone)
    low, high = span.slot_range
    bucket = span.bucket_sql("slot", grain)
    params = {"low": low, "high": high}
    result: dict[date, Bucket] = {}

    def get(number: object) -> Bucket:
        start = span.bucket_start(int(number), grain)  # type: ignore[arg-type]
        return result.setdefault(start, Bucket(start))

    # Two levels (user per bucket first): hash aggregation instead of a sort per DISTINCT.
    for number, users in session.execute(
        text(
            "SELECT b, COUNT(*) FROM"
            f" (SELECT {bucket} AS b, user_id FROM analytics_active_slots"
            f"  WHERE slot >= :low AND slot < :high GROUP BY {bucket}, user_id) x GROUP BY b"
        ),
        params,
    ):
        get(number).users = int(users)
    for number, name, events, users in session.execute(
        text(
            "SELECT b, name, SUM(n), SUM(CASE WHEN user_id <> 0 THEN 1 ELSE 0 END) FROM"
            f" (SELECT {bucket} AS b, name, user_id, SUM(events) AS n"
            "  FROM analytics_feature_slots WHERE slot >= :low AND slot < :high"
            f"  GROUP BY {bucket}, name, user_id) x GROUP BY b, name"
        ),
        params,
    ):
        target = get(number)
        target.features[str(name)] = (int(events), int(users))
        target.events += int(events)
    return result


def _row(
    zone: str, grain: str, start: date, name: str, users: int, events: int, slot_hi: int
) -> dict[str, object]:
    return {
        "zone": zone,
        "grain": grain,
        "bucket": start,
        "name": name,
        "users": users,
        "events": events,
        "slot_hi": slot_hi,
    }


def _store(session: Session, rows: list[dict[str, object]], mark: int) -> None:
    """Keep the computed buckets unless the rollups moved meanwhile (then they may be stale)."""
    if not rows:
        return
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    try:
        session.execute(insert(BucketCount).on_conflict_do_nothing(), rows)
        if rollups.watermark(session) == mark:
            session.commit()
        else:
            session.rollback()
    except Exception:  # noqa: BLE001 - a cache that cannot be written is only slower
        session.rollback()
