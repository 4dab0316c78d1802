"""The analytics dashboard (/admin/analytics) and its JSON (/api/v1/admin/analytics).

Site admins only: pages answer 403 to everyone else, the API 401 without a token
and 403 for a token whose user is not a site admin. Every page takes the same
range (``from``, ``to``, ``tz``) and offers each of its tables as CSV
(``?format=csv&table=<key>``). Views stay thin: parse the range, refresh the
rollups, call :mod:`metrics`, :mod:`funnels`, :mod:`experiments` or
:mod:`forecast`, and hand plain data to the templates.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, render_template, request, url_for
from flask import session as web_session
from sqlalchemy.orm import Session

from app import db
from app.analytics import buckets, charts, experiments, forecast, funnels, metrics, rollups
from app.analytics import experiment_models as _experiment_models  # noqa: F401 (tables)
from app.analytics.periods import GRAINS, Period, PeriodError
from app.api import errors as api_errors
from app.auth.permissions import can_administer_site
from app.errors import ApiError

bp = Blueprint("analytics_dashboard", __name__, url_prefix="/admin/analytics")
api = Blueprint("analytics_api", __name__, url_prefix="/api/v1/admin/analytics")
api_errors.register(api)

#: Time zones offered in the picker (any IANA name may be typed).
COMMON_ZONES = (
    "UTC",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
)


@dataclass
class Table:
    """One table of a page: shown as HTML, downloadable as CSV under ``key``."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[Any]]


@dataclass(frozen=True)
class Page:
    endpoint: str
    label: str


PAGES = (
    Page("overview", "Overview"),
    Page("features", "Features"),
    Page("funnel", "Funnel"),
    Page("retention", "Retention"),
    Page("experiments_page", "Experiments"),
    Page("audience", "Audience"),
    Page("usage", "Usage & capacity"),
    Page("success", "Success metrics"),
)


# --- shared request handling ----------------------------------------------------------


@bp.before_request
def _site_admins_only() -> None:
    if not can_administer_site(g.get("actor")):
        raise ApiError(403, "The analytics dashboard is for site admins.")


def _period(default_days: int = 30) -> Period:
    try:
        return Period.parse(
            request.args.get("from"),
            request.args.get("to"),
            request.args.get("tz"),
            default_days=default_days,
        )
    except PeriodError as exc:
        raise ApiError(400, str(exc), "bad_request") from None


def _session() -> Session:
    """The request's session with the rollups brought up to date."""
    session = db.session()
    try:
        rollups.refresh(
            session,
            lag_seconds=_setting("ANALYTICS_ROLLUP_LAG_SECONDS", 60),
            check_every=_setting("ANALYTICS_ROLLUP_CHECK_SECONDS", 300),
        )
    except Exception:  # noqa: BLE001 - stale figures beat no page; the next request retries
        session.rollback()
        current_app.logger.warning("analytics rollup refresh failed", exc_info=True)
    buckets.tune(session)
    return session


def _setting(name: str, default: float) -> float:
    """A number from the app config, else the environment, else ``default``.

    ``ANALYTICS_ROLLUP_LAG_SECONDS``: events younger than this wait for the next
    refresh (a batch still committing may hold lower ids). ``ANALYTICS_ROLLUP_CHECK_SECONDS``:
    how often a process checks whether events were deleted (retention, data requests).
    """
    value = current_app.config.get(name)
    if value is None:
        value = os.environ.get(name, default)
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _render(template: str, period: Period, tables: list[Table], **context: Any):
    """The page, or one of its tables as CSV when ``format=csv``."""
    if request.args.get("format") == "csv":
        return _csv(period, tables)
    if request.args.get("format") not in (None, "", "html"):
        raise ApiError(400, "format is html or csv.", "bad_request")
    return render_template(
        template,
        period=period,
        tables={t.key: t for t in tables},
        pages=PAGES,
        zones=COMMON_ZONES,
        query=_query(period),
        **context,
    )


def _query(period: Period) -> dict[str, str]:
    """The range as query arguments, for links that keep it."""
    query = {"from": period.start.isoformat(), "to": period.end.isoformat(), "tz": period.zone_name}
    if request.args.get("grain") in GRAINS:
        query["grain"] = request.args["grain"]
    return query


def _csv(period: Period, tables: list[Table]) -> Response:
    key = request.args.get("table", "")
    table = next((t for t in tables if t.key == key), None)
    if table is None:
        choices = ", ".join(t.key for t in tables)
        raise ApiError(404, f"No table {key!r} on this page; choose one of: {choices}.")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(table.columns)
    writer.writerows(table.rows)
    name = f"quire-{table.key}-{period.start}-{period.end}.csv"
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _ratio(value: float | None, digits: int = 3) -> str | float:
    return "" if value is None else round(value, digits)


# --- pages ----------------------------------------------------------------------------


@bp.get("")
def overview():
    period = _period()
    session = _session()
    engagement = metrics.engagement(session, period)
    daily = Table(
        "daily",
        "Active users per day",
        ["date", "active_users", "events"],
        [[d.isoformat(), users, events] for d, users, events in engagement.series],
    )
    chart = charts.line_chart([(d, u) for d, u, _ in engagement.series], "active users")
    return _render(
        "analytics/overview.html",
        period,
        [daily],
        engagement=engagement,
        sign_ups=metrics.sign_ups(session, period),
        events=metrics.event_total(engagement),
        chart=chart,
    )


@bp.get("/features")
def features():
    period = _period()
    grain = request.args.get("grain", "week")
    if grain not in GRAINS:
        raise ApiError(400, f"grain is one of {', '.join(GRAINS)}.", "bad_request")
    session = _session()
    usage = metrics.feature_usage(session, period, grain)
    adoption = metrics.adoption(session, period)
    tables = [
        Table(
            "adoption",
            "Feature adoption",
            ["feature", "events", "users", "active_users", "share"],
            [[a.name, a.events, a.users, a.active_users, _ratio(a.share)] for a in adoption],
        ),
        Table(
            "usage",
            f"Feature usage per {grain}",
            [grain, "feature", "events", "users"],
            [[r.bucket.isoformat(), r.name, r.events, r.users] for r in usage],
        ),
    ]
    adopted = [a for a in adoption if a.share is not None and a.name != "page_view"]
    bars = charts.bars([(a.name, a.share, f"{a.share:.0%} · {a.users:,}") for a in adopted])
    summary = "; ".join(f"{a.name.replace('_', ' ')}: {a.share:.0%}" for a in adopted) or "none"
    return _render(
        "analytics/features.html",
        period,
        tables,
        grain=grain,
        grains=GRAINS,
        bars=bars,
        summary=f"Share of the range's active users who used each feature: {summary}.",
    )


@bp.get("/funnel")
def funnel():
    period = _period()
    window = _window_days()
    steps = funnels.funnel(_session(), period, funnels.ACTIVATION, timedelta(days=window))
    table = Table(
        "funnel",
        "Activation funnel",
        ["step", "users", "share_of_entrants", "share_of_previous"],
        [[s.name, s.users, _ratio(s.overall), _ratio(s.from_previous)] for s in steps],
    )
    bars = charts.bars(
        [
            (s.name, s.users, f"{s.users:,} · {s.overall:.0%}" if s.overall is not None else "0")
            for s in steps
        ]
    )
    return _render("analytics/funnel.html", period, [table], steps=steps, bars=bars, window=window)


def _window_days() -> int:
    raw = request.args.get("window", "30")
    if not raw.isdigit() or not 1 <= int(raw) <= 365:
        raise ApiError(400, "window is a number of days from 1 to 365.", "bad_request")
    return int(raw)


@bp.get("/retention")
def retention():
    period = _period(default_days=84)
    cohorts = metrics.retention(_session(), period)
    width = max((len(c.returned) for c in cohorts), default=0)
    table = Table(
        "cohorts",
        "Weekly retention cohorts",
        ["cohort_week", "users", *[f"week_{k}" for k in range(width)]],
        [
            [c.week.isoformat(), c.size, *("" if v is None else v for v in c.returned)]
            for c in cohorts
        ],
    )
    return _render("analytics/retention.html", period, [table], cohorts=cohorts, width=width)


@bp.get("/experiments")
def experiments_page():
    period = _period()
    results = experiments.all_results(_session())
    table = Table(
        "experiments",
        "Experiments",
        [
            "experiment",
            "variant",
            "participants",
            "conversions",
            "rate",
            "probability_to_beat_control",
            "p_value",
            "srm_warning",
        ],
        [
            [
                r.experiment.name,
                v.name,
                v.participants,
                v.conversions,
                _ratio(v.rate, 4),
                _ratio(v.probability_to_beat_control, 4),
                _ratio(v.p_value, 4),
                r.srm_warning,
            ]
            for r in results
            for v in r.variants
        ],
    )
    return _render("analytics/experiments.html", period, [table], results=results)


@bp.get("/audience")
def audience():
    period = _period()
    session = _session()
    documents = metrics.top_documents(session, period)
    tables = [
        Table(
            "documents",
            "Top documents",
            ["document", "title", "opens", "readers"],
            [[d["slug"], d["title"], d["opens"], d["readers"]] for d in documents],
        )
    ]
    breakdowns = metrics.visit_breakdowns(session, period)
    for key, column, title in (
        ("referrers", "referring_domain", "Referrers"),
        ("devices", "device_type", "Devices"),
        ("browsers", "browser", "Browsers"),
        ("systems", "os", "Operating systems"),
    ):
        rows = breakdowns[column]
        tables.append(Table(key, title, [column, "visits"], [[k, n] for k, n in rows]))
    return _render("analytics/audience.html", period, tables)


@bp.get("/usage")
def usage():
    period = _period(default_days=90)
    session = _session()
    root = Path(current_app.config["REPOS_ROOT"])
    report = metrics.usage(session, period, root)
    try:
        forecast.record_storage(session, report.total_bytes, report.documents)
        buckets.tune(session)
    except Exception:  # noqa: BLE001 - a missed sample only thins the forecast
        session.rollback()
    outlook = forecast.forecast(session, period, root, report.total_bytes, report.documents)
    tables = [
        Table(
            "storage",
            "Largest documents",
            ["document", "title", "bytes"],
            [[slug, title, size] for slug, title, size in report.largest],
        ),
        Table(
            "seats",
            "Seats per role",
            ["role", "memberships", "people"],
            [[r, m, p] for r, m, p in report.seats],
        ),
        Table(
            "forecast",
            "Capacity forecast",
            ["measure", "now", "per_day", "in_30_days", "in_90_days"],
            [
                [t.name, round(t.current, 1), round(t.per_day, 3), round(t.at(30)), round(t.at(90))]
                for t in (outlook.users, outlook.documents, outlook.storage)
            ],
        ),
    ]
    return _render("analytics/usage.html", period, tables, report=report, outlook=outlook)


@bp.get("/success")
def success():
    period = _period(default_days=90)
    result = metrics.success(_session(), period)
    table = Table(
        "success",
        "Success metrics",
        ["metric", "value", "detail"],
        [
            [
                "collaborative_documents_using_git_structure",
                _ratio(result.structured_share),
                f"{result.structured_documents} of {result.collaborative_documents}",
            ],
            [
                "key_actions_tracked",
                _ratio(result.tracked_share),
                f"{len(result.tracked_actions)} of {len(metrics.KEY_ACTIONS)}",
            ],
            [
                "live_sessions_per_document",
                _ratio(result.sessions_per_document, 2),
                f"{result.live_sessions} sessions in {result.live_documents} documents",
            ],
        ],
    )
    missing = sorted(set(metrics.KEY_ACTIONS) - set(result.tracked_actions))
    return _render("analytics/success.html", period, [table], result=result, missing=missing)


# --- JSON API ---------------------------------------------------------------------------


@api.before_request
def _admin_token() -> None:
    from app.api.views import _authenticate

    _authenticate()
    actor = g.get("api_actor")
    if actor is None:
        raise ApiError(401, "Send a site admin's token: Authorization: Bearer <token>.")
    if not can_administer_site(actor):
        raise ApiError(403, "Analytics are for site admins.", "forbidden")


def _range_json(period: Period) -> dict[str, str]:
    return {"from": period.start.isoformat(), "to": period.end.isoformat(), "tz": period.zone_name}


@api.get("/engagement")
def engagement_json():
    period = _period()
    result = metrics.engagement(_session(), period)
    return {
        **_range_json(period),
        "dau": result.dau,
        "wau": result.wau,
        "mau": result.mau,
        "dau_mau": result.stickiness,
        "series": [
            {"date": d.isoformat(), "users": users, "events": events}
            for d, users, events in result.series
        ],
    }


@api.get("/funnel")
def funnel_json():
    period = _period()
    window = _window_days()
    steps = funnels.funnel(_session(), period, funnels.ACTIVATION, timedelta(days=window))
    return {
        **_range_json(period),
        "window_days": window,
        "steps": [
            {
                "name": s.name,
                "users": s.users,
                "conversion": s.overall,
                "from_previous": s.from_previous,
            }
            for s in steps
        ],
    }


@api.get("/experiments")
def experiments_json():
    results = experiments.all_results(_session())
    return {
        "experiments": [
            {
                "name": r.experiment.name,
                "status": r.experiment.status,
                "goals": list(r.experiment.goals),
                "srm_p_value": r.srm_p_value,
                "srm_warning": r.srm_warning,
                "variants": [
                    {
                        "name": v.name,
                        "control": v.is_control,
                        "participants": v.participants,
                        "conversions": v.conversions,
                        "rate": v.rate,
                        "probability_to_beat_control": v.probability_to_beat_control,
                        "p_value": v.p_value,
                        "srm_warning": r.srm_warning,
                    }
                    for v in r.variants
                ],
            }
            for r in results
        ]
    }


def _describe_api() -> None:
    from app.api import openapi

    number = {"type": ["number", "null"]}
    range_params = [
        openapi._q("from", "First local day (YYYY-MM-DD); default 29 days before `to`."),
        openapi._q("to", "Last local day (YYYY-MM-DD); default today."),
        openapi._q("tz", "IANA time zone of the days; default UTC."),
    ]
    errors = {
        "400": openapi._error("Bad date, range or time zone."),
        "401": openapi._error("No token, or an invalid one."),
        "403": openapi._error("The token's user is not a site admin."),
    }
    range_props = {"from": openapi.STR, "to": openapi.STR, "tz": openapi.STR}
    schemas = {
        "AnalyticsEngagement": openapi._obj(
            {
                **range_props,
                "dau": openapi.INT,
                "wau": openapi.INT,
                "mau": openapi.INT,
                "dau_mau": number,
                "series": {
                    "type": "array",
                    "items": openapi._obj(
                        {"date": openapi.STR, "users": openapi.INT, "events": openapi.INT}
                    ),
                },
            }
        ),
        "AnalyticsFunnel": openapi._obj(
            {
                **range_props,
                "window_days": openapi.INT,
                "steps": {
                    "type": "array",
                    "items": openapi._obj(
                        {
                            "name": openapi.STR,
                            "users": openapi.INT,
                            "conversion": number,
                            "from_previous": number,
                        }
                    ),
                },
            }
        ),
        "AnalyticsExperiments": openapi._obj(
            {
                "experiments": {
                    "type": "array",
                    "items": openapi._obj(
                        {
                            "name": openapi.STR,
                            "status": {"enum": list(experiments.STATUSES)},
                            "goals": {"type": "array", "items": openapi.STR},
                            "srm_p_value": number,
                            "srm_warning": openapi.BOOL,
                            "variants": {
                                "type": "array",
                                "items": openapi._obj(
                                    {
                                        "name": openapi.STR,
                                        "control": openapi.BOOL,
                                        "participants": openapi.INT,
                                        "conversions": openapi.INT,
                                        "rate": number,
                                        "probability_to_beat_control": number,
                                        "p_value": number,
                                        "srm_warning": openapi.BOOL,
                                    }
                                ),
                            },
                        }
                    ),
                }
            }
        ),
    }

    def operation(summary: str, schema: str, params: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "get": {
                "summary": summary,
                "tags": ["analytics"],
                "security": [{"bearer": []}],
                "parameters": params,
                "responses": {"200": openapi._json(openapi._ref(schema), summary), **errors},
            }
        }

    openapi.extend(
        {
            "/admin/analytics/engagement": operation(
                "DAU (last day), WAU, MAU and active users per day, zero-filled.",
                "AnalyticsEngagement",
                range_params,
            ),
            "/admin/analytics/funnel": operation(
                "The activation funnel: people per step, each after the previous one.",
                "AnalyticsFunnel",
                [
                    *range_params,
                    openapi._q(
                        "window", "Days from the first step to reach the others (1-365; 30)."
                    ),
                ],
            ),
            "/admin/analytics/experiments": operation(
                "Every configured experiment: participants, conversions and the tests per variant.",
                "AnalyticsExperiments",
                [],
            ),
        },
        schemas,
    )


_describe_api()


# --- registration -----------------------------------------------------------------------


def _after_sign_up(response: Response) -> Response:
    """Carry a visitor's experiment assignments over to the account just created."""
    if request.endpoint == "accounts.signup" and request.method == "POST":
        user_id = web_session.get("uid")
        if user_id is not None and response.status_code in (302, 303):
            experiments.on_signed_up(int(user_id), experiments.visitor_token())
    return response


def init_app(app: Flask) -> None:
    """Register /admin/analytics and /api/v1/admin/analytics."""
    from app.extensions import csrf

    app.register_blueprint(bp)
    app.register_blueprint(api)
    csrf.exempt(api)  # bearer tokens only, like the rest of /api/v1
    app.after_request(_after_sign_up)
    helper: Callable[[str], str] = experiments.variant_for
    app.jinja_env.globals["experiment_variant"] = helper
    app.jinja_env.globals["analytics_url"] = lambda endpoint, **kw: url_for(
        f"analytics_dashboard.{endpoint}", **kw
    )
    from app.analytics.cli import analytics_cli
    from app.analytics.seed import seed_command

    analytics_cli.add_command(seed_command)
    analytics_cli.add_command(rollups.rollup_command)
