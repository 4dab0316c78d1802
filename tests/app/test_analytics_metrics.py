"""Analytics metrics on hand-built datasets whose answers are worked out below.

Every test runs on SQLite and on PostgreSQL (the ``app`` fixture): the figures go
through the real rollups, bucket counts and SQL of each database, and the pages
and JSON are read through the test client as a site admin would.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text, update

from app import db
from app.accounts.models import User
from app.analytics import funnels, metrics, rollups
from app.analytics.models import Event, Visit
from app.analytics.periods import Period, PeriodError

ADMIN = "boss"


def at(spec: str) -> datetime:
    return datetime.fromisoformat(spec).replace(tzinfo=UTC)


def make_users(accounts, app, created: dict[str, str]) -> dict[str, int]:
    ids = {}
    for name, when in created.items():
        user = accounts.create(name)
        with app.app_context():
            db.session().execute(update(User).where(User.id == user.id).values(created_at=at(when)))
            db.session().commit()
        ids[name] = user.id
    return ids


def add_events(app, rows: list[tuple[int | None, str, str, dict | None]]) -> None:
    """(user id, name, UTC time, properties) → analytics_events."""
    with app.app_context():
        session = db.session()
        for user_id, name, when, props in rows:
            session.add(
                Event(
                    user_id=user_id,
                    name=name,
                    time=at(when),
                    properties=props or {},
                    visitor_token=None,
                )
            )
        session.commit()


def paris(start: str, end: str) -> Period:
    return Period.parse(start, end, "Europe/Paris")


# --- engagement ---------------------------------------------------------------------


@pytest.fixture
def engagement_data(app, accounts):
    """Five people; March 2026; Paris moves to summer time on Sunday 29 March.

    ====  ==========================================  ===============================
    who   events (UTC)                                note
    ====  ==========================================  ===============================
    u1    Mar 10 09:00 commit_made;                   active Mar 10 and Mar 31
          Mar 31 10:00 page_view, 10:05 doc opened
    u2    Mar 31 12:00 logged_in                      active Mar 31
    u3    Mar 27 08:00 page_view;                     22:30 UTC on Mar 31 is 00:30 on
          Mar 31 22:30 page_view                      April 1 in Paris (UTC+2)
    u4    Mar 5 12:00 commit_made                     in the 30 days, not the 7
    u5    Feb 28 12:00 page_view                      before the period
    --    Mar 31 11:00 page_view (not signed in)      counts as an event, not a user
    ====  ==========================================  ===============================

    UTC, 1-31 March: DAU (Mar 31) = {u1, u2, u3} = 3, with 5 events;
    WAU (Mar 25-31) = {u1, u2, u3} = 3; MAU (Mar 2-31) = {u1, u2, u3, u4} = 4;
    active in the period = 4 (u5 is outside). DAU/MAU = 3/4.
    Paris, 1-31 March: DAU = {u1, u2} = 2 (u3's late view is April 1 there);
    WAU = 3; MAU = 4.
    """
    ids = make_users(
        accounts,
        app,
        {n: "2026-01-01T00:00:00" for n in ("u1", "u2", "u3", "u4", "u5")},
    )
    u1, u2, u3, u4, u5 = (ids[n] for n in ("u1", "u2", "u3", "u4", "u5"))
    add_events(
        app,
        [
            (u1, "commit_made", "2026-03-10T09:00:00", {"document_id": 1}),
            (u1, "page_view", "2026-03-31T10:00:00", None),
            (u1, "document_opened", "2026-03-31T10:05:00", {"document_id": 1}),
            (u2, "logged_in", "2026-03-31T12:00:00", None),
            (u3, "page_view", "2026-03-27T08:00:00", None),
            (u3, "page_view", "2026-03-31T22:30:00", None),
            (u4, "commit_made", "2026-03-05T12:00:00", {"document_id": 2}),
            (u5, "page_view", "2026-02-28T12:00:00", None),
            (None, "page_view", "2026-03-31T11:00:00", None),
        ],
    )
    return ids


def test_engagement_utc(app, engagement_data):
    with app.app_context():
        session = db.session()
        rollups.refresh(session)
        result = metrics.engagement(session, Period.parse("2026-03-01", "2026-03-31", "UTC"))
    assert (result.dau, result.wau, result.mau, result.active_users) == (3, 3, 4, 4)
    assert result.stickiness == pytest.approx(0.75)
    series = {d: (users, events) for d, users, events in result.series}
    assert len(series) == 31  # zero-filled
    assert series[date(2026, 3, 31)] == (3, 5)
    assert series[date(2026, 3, 10)] == (1, 1)
    assert series[date(2026, 3, 5)] == (1, 1)
    assert series[date(2026, 3, 27)] == (1, 1)
    assert series[date(2026, 3, 1)] == (0, 0)
    assert sum(users for users, _ in series.values()) == 6


def test_engagement_in_a_time_zone_with_a_dst_change(app, engagement_data):
    with app.app_context():
        session = db.session()
        rollups.refresh(session)
        result = metrics.engagement(session, paris("2026-03-01", "2026-03-31"))
        april = metrics.engagement(session, paris("2026-04-01", "2026-04-01"))
    assert (result.dau, result.wau, result.mau) == (2, 3, 4)
    series = {d: users for d, users, _ in result.series}
    assert series[date(2026, 3, 31)] == 2
    assert april.dau == 1  # u3's 22:30 UTC view on March 31


def test_bucket_counts_are_kept_and_invalidated_by_late_events(app, engagement_data):
    """Closed days are stored; an event arriving late for one of them is not missed."""
    period = Period.parse("2026-03-01", "2026-03-31", "UTC")
    with app.app_context():
        session = db.session()
        rollups.refresh(session)
        assert metrics.engagement(session, period).series[9][1] == 1  # Mar 10
        stored = session.execute(text("SELECT COUNT(*) FROM analytics_bucket_counts")).scalar()
        assert stored >= 31
    add_events(app, [(engagement_data["u2"], "page_view", "2026-03-10T18:00:00", None)])
    with app.app_context():
        session = db.session()
        assert rollups.refresh(session) == 1
        assert metrics.engagement(session, period).series[9][1] == 2


def test_rollups_rebuild_after_events_are_deleted(app, engagement_data):
    period = Period.parse("2026-03-01", "2026-03-31", "UTC")
    with app.app_context():
        session = db.session()
        rollups.refresh(session)
        assert metrics.engagement(session, period).mau == 4
        session.execute(
            text("DELETE FROM analytics_events WHERE user_id = :u"), {"u": engagement_data["u4"]}
        )
        session.commit()
        rollups.refresh(session, check_every=0)
        assert metrics.engagement(session, period).mau == 3


def test_feature_usage_and_adoption(app, engagement_data):
    """Weeks start on Monday: 23 Feb, 2, 9, 16, 23 and 30 March overlap March 2026.

    commit_made: week of 2 Mar (u4) and week of 9 Mar (u1), one event and one user each.
    page_view (counted without viewers): week of 30 Mar has 3 (u1, anonymous, u3),
    week of 23 Mar has 1, and week of 23 Feb has u5's view (whole weeks are shown).
    Adoption in March (UTC): 4 active users; commit_made by u1 and u4 → 2/4;
    document_opened and logged_in → 1/4 each.
    """
    period = Period.parse("2026-03-01", "2026-03-31", "UTC")
    with app.app_context():
        session = db.session()
        rollups.refresh(session)
        usage = metrics.feature_usage(session, period, "week")
        adoption = {a.name: a for a in metrics.adoption(session, period)}
        months = metrics.feature_usage(session, period, "month")
    rows = {(r.bucket, r.name): (r.events, r.users) for r in usage}
    assert {r.bucket for r in usage} == {
        date(2026, 2, 23),
        date(2026, 3, 2),
        date(2026, 3, 9),
        date(2026, 3, 16),
        date(2026, 3, 23),
        date(2026, 3, 30),
    }
    assert rows[(date(2026, 3, 2), "commit_made")] == (1, 1)
    assert rows[(date(2026, 3, 9), "commit_made")] == (1, 1)
    assert rows[(date(2026, 3, 16), "commit_made")] == (0, 0)
    assert rows[(date(2026, 3, 30), "page_view")] == (3, 0)
    assert rows[(date(2026, 3, 23), "page_view")] == (1, 0)
    assert rows[(date(2026, 2, 23), "page_view")] == (1, 0)
    assert rows[(date(2026, 3, 30), "mr_merged")] == (0, 0)  # key actions are zero-filled
    assert adoption["commit_made"].users == 2
    assert adoption["commit_made"].share == pytest.approx(0.5)
    assert adoption["document_opened"].share == pytest.approx(0.25)
    assert adoption["logged_in"].share == pytest.approx(0.25)
    assert adoption["mr_merged"].share == 0
    month = {(r.bucket, r.name): (r.events, r.users) for r in months}
    assert month[(date(2026, 3, 1), "commit_made")] == (2, 2)
    assert month[(date(2026, 3, 1), "page_view")] == (4, 0)


# --- funnel -------------------------------------------------------------------------


@pytest.fixture
def funnel_data(app, accounts):
    """Activation steps: signed_up → document_created → commit_made → mr_opened → mr_merged.

    a  does all five in order (1-5 March)                       → 5 steps
    b  signs up, creates a document, commits                    → 3 steps
    c  commits on 2 March *before* creating a document (3 Mar)  → 2 steps (order matters)
    d  signs up 1 March, creates a document on 15 April         → 1 step in 30 days, 2 in 60
    e  signed up in February (outside the range), does it all   → not in the funnel

    Counts for March, 30-day window: 4, 3, 2, 1, 1. With a 60-day window: 4, 4, 2, 1, 1.
    """
    ids = make_users(accounts, app, {n: "2026-01-01T00:00:00" for n in "abcde"})
    a, b, c, d, e = (ids[n] for n in "abcde")
    add_events(
        app,
        [
            (a, "signed_up", "2026-03-01T09:00:00", None),
            (a, "document_created", "2026-03-02T09:00:00", None),
            (a, "commit_made", "2026-03-03T09:00:00", None),
            (a, "mr_opened", "2026-03-04T09:00:00", None),
            (a, "mr_merged", "2026-03-05T09:00:00", None),
            (b, "signed_up", "2026-03-01T10:00:00", None),
            (b, "document_created", "2026-03-02T10:00:00", None),
            (b, "commit_made", "2026-03-03T10:00:00", None),
            (c, "signed_up", "2026-03-01T11:00:00", None),
            (c, "commit_made", "2026-03-02T11:00:00", None),
            (c, "document_created", "2026-03-03T11:00:00", None),
            (d, "signed_up", "2026-03-01T12:00:00", None),
            (d, "document_created", "2026-04-15T12:00:00", None),
            (e, "signed_up", "2026-02-20T12:00:00", None),
            (e, "document_created", "2026-03-02T12:00:00", None),
            (e, "commit_made", "2026-03-03T12:00:00", None),
            (e, "mr_opened", "2026-03-04T12:00:00", None),
            (e, "mr_merged", "2026-03-05T12:00:00", None),
        ],
    )
    return ids


def test_funnel_counts_ordered_steps_within_the_window(app, funnel_data):
    period = Period.parse("2026-03-01", "2026-03-31", "UTC")
    with app.app_context():
        session = db.session()
        month = funnels.funnel(session, period)
        wide = funnels.funnel(session, period, window=timedelta(days=60))
    assert [s.users for s in month] == [4, 3, 2, 1, 1]
    assert [s.name for s in month] == list(funnels.ACTIVATION)
    assert month[1].overall == pytest.approx(0.75)
    assert month[2].from_previous == pytest.approx(2 / 3)
    assert [s.users for s in wide] == [4, 4, 2, 1, 1]


# --- retention ----------------------------------------------------------------------


def test_retention_cohorts(app, accounts):
    """Period: Monday 2 March to Sunday 22 March 2026 (three weeks), UTC.

    p1 signs up Mon 2 Mar, active 3, 11 and 20 March → weeks 0, 1, 2
    p2 signs up Wed 4 Mar, active 4 and 19 March     → weeks 0, 2
    p3 signs up Tue 10 Mar, active 16 March          → week 1 only
    old signed up in February (no cohort), active on 3 March.

    Cohort of 2 Mar: 2 people; week 0: 2, week 1: 1, week 2: 2.
    Cohort of 9 Mar: 1 person; week 0: 0, week 1: 1, week 2: unknown (starts 23 Mar).
    """
    ids = make_users(
        accounts,
        app,
        {
            "p1": "2026-03-02T08:00:00",
            "p2": "2026-03-04T08:00:00",
            "p3": "2026-03-10T08:00:00",
            "old": "2026-02-01T08:00:00",
        },
    )
    add_events(
        app,
        [
            (ids["p1"], "page_view", "2026-03-03T09:00:00", None),
            (ids["p1"], "page_view", "2026-03-11T09:00:00", None),
            (ids["p1"], "commit_made", "2026-03-20T09:00:00", None),
            (ids["p2"], "page_view", "2026-03-04T09:00:00", None),
            (ids["p2"], "page_view", "2026-03-19T09:00:00", None),
            (ids["p3"], "page_view", "2026-03-16T09:00:00", None),
            (ids["old"], "page_view", "2026-03-03T09:00:00", None),
        ],
    )
    with app.app_context():
        session = db.session()
        rollups.refresh(session)
        cohorts = metrics.retention(session, Period.parse("2026-03-02", "2026-03-22", "UTC"))
    assert [(c.week, c.size, c.returned) for c in cohorts] == [
        (date(2026, 3, 2), 2, [2, 1, 2]),
        (date(2026, 3, 9), 1, [0, 1, None]),
    ]
    assert cohorts[0].share(1) == pytest.approx(0.5)
    assert cohorts[1].share(2) is None


# --- periods ------------------------------------------------------------------------


def test_period_parsing_rejects_bad_input():
    with pytest.raises(PeriodError):
        Period.parse("2026-03-31", "2026-03-01", "UTC")
    with pytest.raises(PeriodError):
        Period.parse("yesterday", None, "UTC")
    with pytest.raises(PeriodError):
        Period.parse(None, None, "Mars/Olympus_Mons")
    with pytest.raises(PeriodError):
        Period.parse("2020-01-01", "2026-01-01", "UTC")
    period = Period.parse(None, "2026-03-31", "Asia/Kolkata")  # UTC+5:30
    assert period.start == date(2026, 3, 2)
    assert period.utc_start == at("2026-03-01T18:30:00")


# --- the dashboard and its JSON -----------------------------------------------------


def test_dashboard_pages_json_and_csv_for_admins(app, client, accounts, engagement_data):
    accounts.create(ADMIN, admin=True)
    accounts.login(client, ADMIN)
    with app.app_context():
        session = db.session()
        session.add(
            Visit(
                visit_token="v" * 24,
                visitor_token="w" * 24,
                referring_domain="news.example",
                device_type="mobile",
                started_at=at("2026-03-31T10:00:00"),
                last_seen_at=at("2026-03-31T10:00:00"),
            )
        )
        session.commit()
    query = "from=2026-03-01&to=2026-03-31&tz=UTC"
    overview = client.get(f"/admin/analytics?{query}")
    assert overview.status_code == 200
    html = overview.get_data(as_text=True)
    assert 'data-kpi="dau">3<' in html and 'data-kpi="mau">4<' in html
    assert "<desc id=" in html  # the chart's text alternative
    for page in ("features", "funnel", "retention", "experiments", "audience", "usage", "success"):
        response = client.get(f"/admin/analytics/{page}?{query}")
        assert response.status_code == 200, page
    assert "news.example" in client.get(f"/admin/analytics/audience?{query}").get_data(True)

    exported = client.get(f"/admin/analytics?{query}&format=csv&table=daily")
    assert exported.status_code == 200
    assert exported.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(exported.get_data(as_text=True))))
    assert rows[0] == ["date", "active_users", "events"]
    assert rows[-1] == ["2026-03-31", "3", "5"]
    adoption = client.get(f"/admin/analytics/features?{query}&format=csv&table=adoption")
    header = next(csv.reader(io.StringIO(adoption.get_data(as_text=True))))
    assert header == ["feature", "events", "users", "active_users", "share"]
    assert client.get(f"/admin/analytics?{query}&format=csv&table=nope").status_code == 404
    assert client.get("/admin/analytics?from=2026-13-01").status_code == 400
    assert client.get("/admin/analytics?tz=Nowhere/Land").status_code == 400
    assert client.get("/admin/analytics/features?grain=year").status_code == 400
    assert client.get("/admin/analytics/funnel?window=0").status_code == 400

    token = accounts.token(ADMIN)
    auth = {"Authorization": f"Bearer {token}"}
    engagement = client.get(f"/api/v1/admin/analytics/engagement?{query}", headers=auth)
    assert engagement.status_code == 200
    body = engagement.json
    assert (body["dau"], body["wau"], body["mau"]) == (3, 3, 4)
    assert body["series"][-1] == {"date": "2026-03-31", "users": 3, "events": 5}
    assert len(body["series"]) == 31
    funnel = client.get(f"/api/v1/admin/analytics/funnel?{query}", headers=auth).json
    assert [s["name"] for s in funnel["steps"]] == list(funnels.ACTIVATION)
    assert all(set(s) >= {"name", "users"} for s in funnel["steps"])
    bad = client.get("/api/v1/admin/analytics/engagement?to=soon", headers=auth)
    assert bad.status_code == 400 and bad.json["error"]["code"] == "bad_request"


def test_dashboard_refuses_everyone_but_site_admins(app, client, accounts):
    assert client.get("/admin/analytics").status_code == 403
    accounts.create(ADMIN)  # the first account on a site is its admin
    accounts.create("member")
    accounts.login(client, "member")
    for page in ("", "/features", "/funnel", "/experiments"):
        assert client.get(f"/admin/analytics{page}").status_code == 403
    assert client.get("/admin/analytics?format=csv&table=daily").status_code == 403
    member_token = accounts.token("member")
    for path in ("engagement", "funnel", "experiments"):
        url = f"/api/v1/admin/analytics/{path}"
        assert client.get(url).status_code == 401
        denied = client.get(url, headers={"Authorization": f"Bearer {member_token}"})
        assert denied.status_code == 403
        assert denied.json["error"]["code"] == "forbidden"


# --- success metrics and top documents ----------------------------------------------


def test_success_metrics_and_top_documents(app, accounts):
    """Three documents in March 2026 (UTC).

    A: commits by u1 and u2 (collaborative), a branch (named by slug, as the product
       does), 3 live sessions, opened 3 times by u1, u2, u1.
    B: commits by u1 only (not collaborative), a merge request, 1 live session.
    C: commits by u1 and u3 (collaborative), no branch, MR or release; opened once by u3.

    Collaborative documents using branches, MRs or releases: A of {A, C} → 1/2.
    Live sessions per document: 4 sessions in 2 documents → 2.0; 100 + 200 seconds.
    Key actions with events: commit_made, branch_created, mr_opened, live_session_joined,
    live_session_ended, document_opened → 6 of 16.
    Top documents: A (3 opens, 2 readers), then C (1 open, 1 reader).
    """
    from app.documents.services import create_document

    ids = make_users(accounts, app, {n: "2026-01-01T00:00:00" for n in ("u1", "u2", "u3")})
    u1, u2, u3 = ids["u1"], ids["u2"], ids["u3"]
    with app.app_context():
        owner = db.session().get(User, u1)
        docs = {t: create_document(owner, t) for t in ("Alpha", "Beta", "Gamma")}
        a, b, c = (docs[t].id for t in ("Alpha", "Beta", "Gamma"))
        slug_a = docs["Alpha"].slug
    day = "2026-03-10T10:{:02d}:00"
    add_events(
        app,
        [
            (u1, "commit_made", day.format(1), {"document_id": a}),
            (u2, "commit_made", day.format(2), {"document_id": a}),
            (u1, "branch_created", day.format(3), {"document": slug_a}),
            (u1, "commit_made", day.format(4), {"document_id": b}),
            (u1, "mr_opened", day.format(5), {"document": docs["Beta"].slug}),
            (u1, "commit_made", day.format(6), {"document_id": c}),
            (u3, "commit_made", day.format(7), {"document_id": c}),
            (u1, "live_session_joined", day.format(8), {"document_id": a}),
            (u2, "live_session_joined", day.format(9), {"document_id": a}),
            (u2, "live_session_joined", day.format(10), {"document_id": a}),
            (u1, "live_session_joined", day.format(11), {"document_id": b}),
            (u1, "live_session_ended", day.format(12), {"document_id": a, "seconds": 100}),
            (u2, "live_session_ended", day.format(13), {"document_id": a, "seconds": 200}),
            (u1, "document_opened", day.format(14), {"document_id": a}),
            (u2, "document_opened", day.format(15), {"document_id": a}),
            (u1, "document_opened", day.format(16), {"document_id": a}),
            (u3, "document_opened", day.format(17), {"document_id": c}),
        ],
    )
    period = Period.parse("2026-03-01", "2026-03-31", "UTC")
    with app.app_context():
        session = db.session()
        rollups.refresh(session)
        result = metrics.success(session, period)
        top = metrics.top_documents(session, period)
    assert (result.collaborative_documents, result.structured_documents) == (2, 1)
    assert result.structured_share == pytest.approx(0.5)
    assert (result.live_sessions, result.live_documents) == (4, 2)
    assert result.sessions_per_document == pytest.approx(2.0)
    assert result.live_seconds == pytest.approx(300.0)
    assert len(result.tracked_actions) == 6
    assert result.tracked_share == pytest.approx(6 / 16)
    assert [(d["title"], d["opens"], d["readers"]) for d in top] == [
        ("Alpha", 3, 2),
        ("Gamma", 1, 1),
    ]


def test_forget_user_removes_their_rollup_rows(app, engagement_data):
    period = Period.parse("2026-03-01", "2026-03-31", "UTC")
    u1 = engagement_data["u1"]
    with app.app_context():
        session = db.session()
        rollups.refresh(session)
        assert metrics.engagement(session, period).dau == 3
        session.execute(text("DELETE FROM analytics_events WHERE user_id = :u"), {"u": u1})
        rollups.forget_user(session, u1)
        session.commit()
        left = session.execute(
            text("SELECT COUNT(*) FROM analytics_active_slots WHERE user_id = :u"), {"u": u1}
        ).scalar()
        assert left == 0
        rollups.refresh(session)
        assert metrics.engagement(session, period).dau == 2


# --- capacity forecast --------------------------------------------------------------


def test_capacity_forecast_fits_lines_and_dates_the_full_volume(app, accounts, tmp_path):
    """Ten people sign up one a day, 1-10 March: the cumulative line is 1, 2, ... 10, so
    the least-squares slope is exactly 1 person a day. Storage measured at 1,000 bytes
    on 1 March and 10,000 on 10 March: 1,000 bytes a day. A volume with 50,000 bytes
    free at 1,000 a day fills in 50 days."""
    from app.analytics import forecast
    from app.analytics.rollups import StorageSample

    assert forecast.least_squares([0, 1, 2], [1, 3, 5]) == pytest.approx((2.0, 1.0))
    make_users(accounts, app, {f"s{i}": f"2026-03-{i:02d}T12:00:00" for i in range(1, 11)})
    with app.app_context():
        session = db.session()
        session.add(StorageSample(day=date(2026, 3, 1), bytes=1000, documents=1))
        session.add(StorageSample(day=date(2026, 3, 10), bytes=10000, documents=1))
        session.commit()
        result = forecast.forecast(
            session, Period.parse("2026-03-01", "2026-03-10", "UTC"), tmp_path, 10000, 1
        )
    assert result.users.per_day == pytest.approx(1.0)
    assert result.users.current == 10
    assert result.documents.per_day == 0
    assert result.storage.per_day == pytest.approx(1000.0)
    assert result.disk_free is not None and result.disk_free > 0
    full = forecast.Forecast(result.users, result.documents, result.storage, "", 10**6, 50_000)
    assert full.fills_on == datetime.now(UTC).date() + timedelta(days=50)
    shrinking = forecast.Trend("storage", 10.0, -5.0, 10)
    assert forecast.Forecast(result.users, result.documents, shrinking, "", 1, 1).fills_on is None
