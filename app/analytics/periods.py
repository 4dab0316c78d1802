"""Local calendar periods (days, weeks, months in a time zone) over rollup slots.

A period is a range of local dates in one IANA time zone. Its days map onto
contiguous ranges of quarter-hour slots; across a daylight-saving change the
offset differs, so the SQL that turns a slot into a local day is a ``CASE`` over
the few stretches of constant offset, evaluated by the database in integers (the
same text on SQLite and PostgreSQL).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.analytics.rollups import SLOT_SECONDS, SLOTS_PER_DAY

EPOCH = date(1970, 1, 1)
MAX_DAYS = 731
GRAINS = ("day", "week", "month")


class PeriodError(ValueError):
    """A date range or time zone the caller must fix (answered with a 400)."""


def parse_zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo((name or "UTC").strip() or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise PeriodError(
            f"Unknown time zone {name!r}; use an IANA name like Europe/Paris."
        ) from None


def parse_date(value: str | None, field: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise PeriodError(f"'{field}' must be a date like 2026-11-26.") from None


@dataclass(frozen=True)
class Period:
    """The local days ``start`` … ``end`` (inclusive) in ``zone``."""

    start: date
    end: date
    zone: ZoneInfo

    @classmethod
    def parse(
        cls,
        start: str | None,
        end: str | None,
        zone: str | None,
        *,
        default_days: int = 30,
        today: date | None = None,
    ) -> Period:
        tz = parse_zone(zone)
        last = parse_date(end, "to") or today or datetime.now(tz).date()
        first = parse_date(start, "from") or last - timedelta(days=default_days - 1)
        if first > last:
            raise PeriodError("'from' must not be after 'to'.")
        if (last - first).days + 1 > MAX_DAYS:
            raise PeriodError(f"A range covers at most {MAX_DAYS} days.")
        return cls(first, last, tz)

    @property
    def zone_name(self) -> str:
        return self.zone.key

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def local_midnight(self, day: date) -> datetime:
        return datetime.combine(day, time(0), self.zone).astimezone(UTC)

    @property
    def utc_start(self) -> datetime:
        return self.local_midnight(self.start)

    @property
    def utc_end(self) -> datetime:
        """The first instant after the period."""
        return self.local_midnight(self.end + timedelta(days=1))

    @property
    def slot_range(self) -> tuple[int, int]:
        """First slot and the first slot after, as integers for SQL."""
        return (
            int(self.utc_start.timestamp()) // SLOT_SECONDS,
            int(self.utc_end.timestamp()) // SLOT_SECONDS,
        )

    def trailing(self, days: int) -> Period:
        """The ``days`` local days ending on this period's last day (for WAU, MAU)."""
        return Period(self.end - timedelta(days=days - 1), self.end, self.zone)

    # --- SQL ---------------------------------------------------------------------

    def offset_stretches(self) -> list[tuple[int, int]]:
        """(first slot, UTC offset in slots) for each stretch of constant offset."""
        low, high = self.slot_range
        stretches: list[tuple[int, int]] = []
        step = 4  # probe hourly, then find the exact quarter-hour of a change
        current = self._offset_slots(low)
        stretches.append((low, current))
        slot = low
        while slot < high:
            nxt = min(slot + step, high)
            off = self._offset_slots(nxt)
            if off != current:
                for s in range(slot + 1, nxt + 1):
                    if self._offset_slots(s) != current:
                        current = self._offset_slots(s)
                        stretches.append((s, current))
                        break
            slot = nxt
        return stretches

    def _offset_slots(self, slot: int) -> int:
        moment = datetime.fromtimestamp(slot * SLOT_SECONDS, UTC).astimezone(self.zone)
        offset = moment.utcoffset() or timedelta(0)
        return int(offset.total_seconds()) // SLOT_SECONDS

    def day_sql(self, slot_column: str) -> str:
        """SQL for the local day (days since 1970-01-01) of a slot column."""
        stretches = self.offset_stretches()

        def day(offset: int) -> str:
            # Slots after 1970 plus an offset of at most 14 hours stay positive, so
            # integer division floors on both databases.
            return f"(({slot_column} + {offset}) / {SLOTS_PER_DAY})"

        if len(stretches) == 1:
            return day(stretches[0][1])
        cases = " ".join(
            f"WHEN {slot_column} < {stretches[i + 1][0]} THEN {day(off)}"
            for i, (_, off) in enumerate(stretches[:-1])
        )
        return f"(CASE {cases} ELSE {day(stretches[-1][1])} END)"

    def bucket_sql(self, slot_column: str, grain: str) -> str:
        """SQL for the bucket number of a slot: its local day, ISO week or month."""
        day = self.day_sql(slot_column)
        if grain == "day":
            return day
        if grain == "week":
            return f"(({day} + 3) / 7)"  # 1970-01-01 was a Thursday: weeks start on Monday
        if grain == "month":
            starts = [(d - EPOCH).days for d in self.month_starts()[1:]]
            if not starts:
                return f"({slot_column} * 0)"  # a bare 0 would mean "column 0" in GROUP BY
            cases = " ".join(f"WHEN {day} < {s} THEN {i}" for i, s in enumerate(starts))
            return f"(CASE {cases} ELSE {len(starts)} END)"
        raise PeriodError(f"grain must be one of {', '.join(GRAINS)}")

    def month_starts(self) -> list[date]:
        first = self.start.replace(day=1)
        months = [first]
        while True:
            y, m = months[-1].year, months[-1].month
            nxt = date(y + (m == 12), 1 if m == 12 else m + 1, 1)
            if nxt > self.end:
                return months
            months.append(nxt)

    def bucket_start(self, bucket: int, grain: str) -> date:
        """The local date a bucket number (from :meth:`bucket_sql`) starts on."""
        if grain == "day":
            return EPOCH + timedelta(days=bucket)
        if grain == "week":
            return EPOCH + timedelta(days=bucket * 7 - 3)
        return self.month_starts()[bucket]

    def buckets(self, grain: str) -> list[date]:
        """Every bucket start within the period (zero-filled series use these)."""
        if grain == "day":
            return self.days
        if grain == "week":
            monday = self.start - timedelta(days=self.start.weekday())
            return [monday + timedelta(weeks=i) for i in range((self.end - monday).days // 7 + 1)]
        if grain == "month":
            return self.month_starts()
        raise PeriodError(f"grain must be one of {', '.join(GRAINS)}")


def day_number(day: date) -> int:
    return (day - EPOCH).days


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())
