"""Capacity forecast: least-squares trends of users, documents and storage.

Each trend is a straight line fitted to the daily totals of the period; the
storage line is fitted to the daily samples of the repositories' size when there
are at least two, else derived from documents × the current bytes per document.
The repositories volume fills when its free space is used up at the storage
line's slope (``shutil.disk_usage`` of the repositories root).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.analytics.periods import Period, day_number
from app.analytics.rollups import StorageSample, slot_sql


@dataclass(frozen=True)
class Trend:
    name: str
    current: float
    per_day: float  # the fitted slope
    points: int  # days the line was fitted to

    def at(self, days_ahead: float) -> float:
        return self.current + self.per_day * days_ahead


@dataclass(frozen=True)
class Forecast:
    users: Trend
    documents: Trend
    storage: Trend
    storage_source: str
    disk_total: int | None
    disk_free: int | None

    @property
    def fills_on(self) -> date | None:
        """The day the volume is full at the current rate (None: not growing, unknown)."""
        if self.disk_free is None or self.storage.per_day <= 0:
            return None
        days = self.disk_free / self.storage.per_day
        if days > 365 * 100:
            return None
        return datetime.now(UTC).date() + timedelta(days=int(days))


def least_squares(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """(slope, intercept) of the line minimising the squared vertical distances."""
    n = len(xs)
    if n == 0:
        return 0.0, 0.0
    if n == 1:
        return 0.0, ys[0]
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    if sxx == 0:
        return 0.0, mean_y
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx
    return slope, mean_y - slope * mean_x


def _fit(name: str, days: list[date], totals: list[float]) -> Trend:
    xs = [float(day_number(d)) for d in days]
    slope, intercept = least_squares(xs, totals)
    current = totals[-1] if totals else 0.0
    return Trend(name, current, slope, len(days))


def cumulative(session: Session, period: Period, table: str) -> list[float]:
    """Rows of ``table`` created by the end of each local day of the period."""
    dialect = session.get_bind().dialect.name
    day = period.day_sql(slot_sql(dialect, "created_at"))
    params = {"start": period.utc_start, "end": period.utc_end}
    before = session.execute(
        text(f"SELECT COUNT(*) FROM {table} WHERE created_at < :start"), params
    ).scalar()
    per_day = dict(
        session.execute(
            text(
                f"SELECT {day} AS d, COUNT(*) FROM {table}"
                f" WHERE created_at >= :start AND created_at < :end GROUP BY {day}"
            ),
            params,
        ).all()
    )
    running = float(before or 0)
    totals = []
    for d in period.days:
        running += float(per_day.get(day_number(d), 0))
        totals.append(running)
    return totals


def record_storage(session: Session, total_bytes: int, documents: int) -> None:
    """Today's storage sample (the latest measurement of the day wins)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(StorageSample).values(
        day=datetime.now(UTC).date(), bytes=total_bytes, documents=documents
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["day"], set_={"bytes": total_bytes, "documents": documents}
        )
    )
    session.commit()


def forecast(
    session: Session, period: Period, repos_root: Path, total_bytes: int, documents: int
) -> Forecast:
    days = period.days
    users = _fit("users", days, cumulative(session, period, "users"))
    docs = _fit("documents", days, cumulative(session, period, "documents"))
    samples = session.execute(
        text("SELECT day, bytes FROM analytics_storage_samples WHERE day >= :first ORDER BY day"),
        {"first": period.start},
    ).all()
    if len(samples) >= 2:
        sample_days = [s if isinstance(s, date) else date.fromisoformat(str(s)) for s, _ in samples]
        storage = _fit("storage", sample_days, [float(b) for _, b in samples])
        storage = Trend("storage", float(total_bytes), storage.per_day, storage.points)
        source = f"fitted to {len(samples)} daily measurements"
    else:
        per_document = total_bytes / documents if documents else 0.0
        storage = Trend("storage", float(total_bytes), docs.per_day * per_document, docs.points)
        source = "documents trend × current bytes per document (fewer than two measurements)"
    try:
        usage = shutil.disk_usage(repos_root)
        total, free = usage.total, usage.free
    except OSError:
        total = free = None
    return Forecast(users, docs, storage, source, total, free)
