"""Funnels: how many people take ordered steps, each after the one before.

A person enters the funnel with their first step-1 event in the period; they
reach step *k* with their first step-*k* event at or after the moment they
reached step *k − 1*, and no later than ``window`` after entering. The whole
chain is one SQL statement of common table expressions over the raw events
(each step read through the ``(name, time)`` index), so it is exact to the
microsecond and needs no rollup.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.analytics.periods import Period

#: Activation: sign up → create a document → first edit → first merge request → first merge.
ACTIVATION = ("signed_up", "document_created", "commit_made", "mr_opened", "mr_merged")
DEFAULT_WINDOW = timedelta(days=30)


@dataclass(frozen=True)
class Step:
    name: str
    users: int
    #: Share of the funnel's entrants (step 1) who got this far.
    overall: float | None
    #: Share of the previous step's people who took this one.
    from_previous: float | None


def _deadline(dialect: str, column: str, seconds: int) -> str:
    if dialect == "postgresql":
        return f"({column} + make_interval(secs => {seconds}))"
    # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff' text; %f gives milliseconds, and the
    # stored value sorts after it only within that last millisecond.
    return f"strftime('%Y-%m-%d %H:%M:%f', {column}, '+{seconds} seconds')"


def funnel(
    session: Session,
    period: Period,
    steps: tuple[str, ...] = ACTIVATION,
    window: timedelta = DEFAULT_WINDOW,
) -> list[Step]:
    if not steps:
        return []
    dialect = session.get_bind().dialect.name
    seconds = int(window.total_seconds())
    params: dict[str, object] = {"start": period.utc_start, "end": period.utc_end}
    params.update({f"n{i}": name for i, name in enumerate(steps)})
    ctes = [
        "s0 AS (SELECT user_id, MIN(time) AS t FROM analytics_events"
        " WHERE name = :n0 AND time >= :start AND time < :end AND user_id IS NOT NULL"
        " GROUP BY user_id)"
    ]
    deadline = _deadline(dialect, "f.t", seconds)
    for i in range(1, len(steps)):
        ctes.append(
            f"s{i} AS (SELECT e.user_id, MIN(e.time) AS t FROM analytics_events e"
            f" JOIN s{i - 1} p ON p.user_id = e.user_id JOIN s0 f ON f.user_id = e.user_id"
            f" WHERE e.name = :n{i} AND e.time >= p.t AND e.time <= {deadline}"
            " GROUP BY e.user_id)"
        )
    counts = ", ".join(f"(SELECT COUNT(*) FROM s{i})" for i in range(len(steps)))
    row = session.execute(text(f"WITH {', '.join(ctes)} SELECT {counts}"), params).one()
    result: list[Step] = []
    first = int(row[0])
    for i, name in enumerate(steps):
        users = int(row[i])
        previous = int(row[i - 1]) if i else users
        result.append(
            Step(
                name=name,
                users=users,
                overall=users / first if first else None,
                from_previous=users / previous if previous else None,
            )
        )
    return result
