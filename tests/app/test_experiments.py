"""Experiments: the statistics against a worked example, sticky assignment through the
real document page, exposure, conversions after exposure only, exclusions, carry-over
on sign-up, and the JSON — on SQLite and PostgreSQL.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select

from app import db
from app.analytics import experiments, tracking
from app.analytics.experiment_models import Assignment
from app.analytics.models import Event

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"}
EXPOSED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CTA = {
    "empty_document_cta": {
        "variants": ["start_writing", "write_together"],
        "weights": [1, 1],
        "goals": ["commit_made"],
        "status": "running",
    }
}


# --- the statistics, by hand ---------------------------------------------------------


def test_worked_example():
    """Control 100/1000 (10 %) against a variant at 130/1000 (13 %).

    z-test, pooled: p = 230/2000 = 0.115; SE = sqrt(0.115 × 0.885 × (1/1000 + 1/1000))
    = sqrt(0.000203550) = 0.0142671; z = (0.13 − 0.10) / 0.0142671 = 2.1027;
    two-sided p = erfc(2.1027 / √2) = 0.0355.

    Bayesian, Beta(1, 1) priors: control ~ Beta(101, 901), variant ~ Beta(131, 871).
    Normal check: means 0.10080 and 0.13074, variances 9.04e-5 and 1.1356e-4, so the
    difference is 0.02994 / sqrt(2.0396e-4) = 2.096 standard deviations above zero:
    Φ(2.096) ≈ 0.982. The closed form gives 0.9822.

    Sample ratio: 1000 against 1000 with weights 1:1 is exactly as expected: p = 1.
    """
    z, p = experiments.z_test(100, 1000, 130, 1000)
    assert z == pytest.approx(2.1027, abs=1e-4)
    assert p == pytest.approx(0.0355, abs=1e-4)
    chance = experiments.probability_to_beat(100, 1000, 130, 1000)
    assert chance == pytest.approx(0.982, abs=0.001)
    assert experiments.probability_to_beat(130, 1000, 100, 1000) == pytest.approx(1 - chance)
    assert experiments.probability_to_beat(50, 500, 50, 500) == pytest.approx(0.5, abs=1e-9)
    assert experiments.srm_p_value([1000, 1000], [1, 1]) == pytest.approx(1.0)


def test_chi_square_and_sample_ratio_mismatch():
    """1000 against 1200 with weights 1:1: expected 1100 each, chi² = 2 × 100²/1100 = 18.18,
    one degree of freedom: p = erfc(sqrt(18.18 / 2)) = 2.0e-5 < 0.001 → a mismatch."""
    assert experiments.chi_square_p(3.841, 1) == pytest.approx(0.05, abs=1e-3)
    assert experiments.chi_square_p(5.991, 2) == pytest.approx(0.05, abs=1e-3)
    assert experiments.chi_square_p(7.815, 3) == pytest.approx(0.05, abs=1e-3)
    p = experiments.srm_p_value([1000, 1200], [1, 1])
    assert p == pytest.approx(math.erfc(math.sqrt(18.1818 / 2)), rel=1e-3)
    assert p < experiments.SRM_THRESHOLD
    assert experiments.srm_p_value([1000, 2000], [1, 2]) == pytest.approx(1.0)


def test_configuration_is_validated():
    with pytest.raises(experiments.ExperimentConfigError, match="two or more"):
        experiments.parse_config({"experiments": {"x": {"variants": ["a"], "goals": ["g"]}}})
    with pytest.raises(experiments.ExperimentConfigError, match="weight"):
        experiments.parse_config(
            {"experiments": {"x": {"variants": ["a", "b"], "weights": [1], "goals": ["g"]}}}
        )
    with pytest.raises(experiments.ExperimentConfigError, match="status"):
        experiments.parse_config(
            {"experiments": {"x": {"variants": ["a", "b"], "goals": ["g"], "status": "on"}}}
        )
    parsed = experiments.parse_config({"experiments": CTA})["empty_document_cta"]
    assert parsed.control == "start_writing"
    # Deterministic and roughly by weight.
    picks = [parsed.choose(f"visitor:{i}") for i in range(2000)]
    assert picks == [parsed.choose(f"visitor:{i}") for i in range(2000)]
    assert 900 < picks.count("write_together") < 1100


def test_the_shipped_configuration_parses(app):
    with app.app_context():
        loaded = experiments.load_experiments()
    assert loaded["empty_document_cta"].variants == ("start_writing", "write_together")


# --- results from stored assignments and events -------------------------------------


def _participants(app, experiment: str, variant: str, n: int, converted: int, tag: str) -> None:
    """``n`` visitors exposed at EXPOSED, ``converted`` of them with a goal event after it."""
    with app.app_context():
        session = db.session()
        session.execute(
            insert(Assignment),
            [
                {
                    "experiment": experiment,
                    "variant": variant,
                    "visitor_token": f"{tag}-{i}",
                    "assigned_at": EXPOSED,
                    "exposed_at": EXPOSED,
                }
                for i in range(n)
            ],
        )
        session.execute(
            insert(Event),
            [
                {
                    "visitor_token": f"{tag}-{i}",
                    "name": "commit_made",
                    "properties": {},
                    "time": EXPOSED + timedelta(hours=1),
                }
                for i in range(converted)
            ],
        )
        session.commit()


def test_results_match_the_worked_example(app, accounts):
    app.config["ANALYTICS_EXPERIMENTS"] = CTA
    _participants(app, "empty_document_cta", "start_writing", 1000, 100, "c")
    _participants(app, "empty_document_cta", "write_together", 1000, 130, "v")
    admin = accounts.create("staff", admin=True)
    with app.app_context():
        session = db.session()
        # Not counted: a goal event *before* exposure, an assignment never shown, staff.
        session.add(Event(visitor_token="c-999", name="commit_made", properties={},
                          time=EXPOSED - timedelta(hours=1)))  # fmt: skip
        session.add(Event(visitor_token="c-998", name="mr_opened", properties={},
                          time=EXPOSED + timedelta(hours=1)))  # fmt: skip
        session.add(Assignment(experiment="empty_document_cta", variant="write_together",
                               visitor_token="never-shown", assigned_at=EXPOSED))  # fmt: skip
        session.add(Assignment(experiment="empty_document_cta", variant="write_together",
                               user_id=admin.id, assigned_at=EXPOSED, exposed_at=EXPOSED))  # fmt: skip
        session.add(Event(user_id=admin.id, name="commit_made", properties={},
                          time=EXPOSED + timedelta(hours=2)))  # fmt: skip
        session.commit()
        result = experiments.results(session, experiments.load_experiments()["empty_document_cta"])
    control, variant = result.variants
    assert (control.participants, control.conversions) == (1000, 100)
    assert (variant.participants, variant.conversions) == (1000, 130)
    assert control.probability_to_beat_control is None
    assert variant.rate == pytest.approx(0.13)
    assert variant.probability_to_beat_control == pytest.approx(0.982, abs=0.001)
    assert variant.z == pytest.approx(2.1027, abs=1e-4)
    assert variant.p_value == pytest.approx(0.0355, abs=1e-4)
    assert not result.srm_warning

    token = accounts.token("staff")
    client = app.test_client()
    body = client.get(
        "/api/v1/admin/analytics/experiments", headers={"Authorization": f"Bearer {token}"}
    ).json
    (cta,) = [e for e in body["experiments"] if e["name"] == "empty_document_cta"]
    by_name = {v["name"]: v for v in cta["variants"]}
    assert by_name["write_together"]["participants"] == 1000
    assert by_name["write_together"]["conversions"] == 130
    assert by_name["write_together"]["probability_to_beat_control"] == pytest.approx(
        0.982, abs=0.001
    )
    assert by_name["write_together"]["srm_warning"] is False
    assert by_name["start_writing"]["probability_to_beat_control"] is None


def test_sample_ratio_mismatch_is_reported(app, client, accounts):
    app.config["ANALYTICS_EXPERIMENTS"] = CTA
    _participants(app, "empty_document_cta", "start_writing", 1000, 100, "c")
    _participants(app, "empty_document_cta", "write_together", 1200, 120, "v")
    accounts.create("staff", admin=True)
    token = accounts.token("staff")
    body = (
        app.test_client()
        .get("/api/v1/admin/analytics/experiments", headers={"Authorization": f"Bearer {token}"})
        .json
    )
    (cta,) = body["experiments"]
    assert cta["srm_warning"] is True
    assert all(v["srm_warning"] for v in cta["variants"])
    assert cta["srm_p_value"] < 0.001
    accounts.login(client, "staff")
    page = client.get("/admin/analytics/experiments").get_data(as_text=True)
    assert "Sample ratio mismatch" in page


# --- assignment and exposure through the product -------------------------------------


def _new_document(client, title: str = "Plans") -> str:
    response = client.submit("/new", {"title": title, "visibility": "private"}, page="/new")
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:300]
    return response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]


def _rows(app, **where) -> list[Assignment]:
    with app.app_context():
        query = select(Assignment)
        for key, value in where.items():
            query = query.where(getattr(Assignment, key) == value)
        return list(db.session().scalars(query))


def test_empty_document_shows_one_sticky_variant_and_logs_exposure(app, client, accounts):
    app.config["ANALYTICS_EXPERIMENTS"] = CTA
    accounts.create("staff", admin=True)
    writer = accounts.create("writer")
    accounts.login(client, "writer")
    slug = _new_document(client)
    first = client.get(f"/d/{slug}", headers=BROWSER).get_data(as_text=True)
    assert 'data-experiment="empty_document_cta"' in first
    (row,) = _rows(app, user_id=writer.id)
    assert row.exposed_at is not None
    assert f'data-variant="{row.variant}"' in first
    heading = "Write it together" if row.variant == "write_together" else "This document is empty"
    assert heading in first
    for _ in range(3):
        again = client.get(f"/d/{slug}", headers=BROWSER).get_data(as_text=True)
        assert f'data-variant="{row.variant}"' in again
    assert len(_rows(app, user_id=writer.id)) == 1
    # Conversions count only after exposure: one commit before (moved back), one after.
    with app.app_context():
        session = db.session()
        session.add(Event(user_id=writer.id, name="commit_made", properties={},
                          time=row.exposed_at - timedelta(minutes=5)))  # fmt: skip
        session.commit()
        result = experiments.results(session, experiments.load_experiments()["empty_document_cta"])
        counts = {v.name: (v.participants, v.conversions) for v in result.variants}
        assert counts[row.variant] == (1, 0)
        session.add(Event(user_id=writer.id, name="commit_made", properties={},
                          time=row.exposed_at + timedelta(minutes=5)))  # fmt: skip
        session.commit()
        result = experiments.results(session, experiments.load_experiments()["empty_document_cta"])
        counts = {v.name: (v.participants, v.conversions) for v in result.variants}
        assert counts[row.variant] == (1, 1)


def test_admins_bots_and_do_not_track_are_not_enrolled(app, client, accounts):
    app.config["ANALYTICS_EXPERIMENTS"] = CTA
    accounts.create("staff", admin=True)
    accounts.login(client, "staff")
    slug = _new_document(client)
    page = client.get(f"/d/{slug}", headers=BROWSER).get_data(as_text=True)
    assert 'data-variant="start_writing"' in page  # the control, unrecorded
    accounts.create("robot")
    robot = app.test_client()  # a second browser (the fixture set the client class)
    accounts.login(robot, "robot")
    robot_slug = _new_document(robot, "Crawled")
    robot.get(
        f"/d/{robot_slug}",
        headers={"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"},
    )
    robot.get(f"/d/{robot_slug}", headers={**BROWSER, "DNT": "1"})
    with app.app_context():
        assert db.session().scalar(select(func.count(Assignment.id))) == 0
    robot.get(f"/d/{robot_slug}", headers=BROWSER)
    assert len(_rows(app)) == 1


def test_stopped_experiments_show_the_control_and_record_nothing(app, client, accounts):
    app.config["ANALYTICS_EXPERIMENTS"] = {
        "empty_document_cta": {**CTA["empty_document_cta"], "status": "stopped"}
    }
    accounts.create("staff", admin=True)
    accounts.create("writer")
    accounts.login(client, "writer")
    slug = _new_document(client)
    page = client.get(f"/d/{slug}", headers=BROWSER).get_data(as_text=True)
    assert 'data-variant="start_writing"' in page
    assert _rows(app) == []


def test_a_visitor_assignment_moves_to_the_account_on_sign_up(app, client, accounts):
    app.config["ANALYTICS_EXPERIMENTS"] = CTA
    accounts.create("staff", admin=True)
    token = "visitor-token-for-the-test-0001"
    with app.test_request_context(
        "/", headers={**BROWSER, "Cookie": f"{tracking.VISITOR_COOKIE}={token}"}
    ):
        app.preprocess_request()
        variant = experiments.variant_for("empty_document_cta")
    (row,) = _rows(app, visitor_token=token)
    assert row.variant == variant and row.user_id is None and row.exposed_at is not None
    client.set_cookie(tracking.VISITOR_COOKIE, token)
    form = {"username": "newcomer", "email": "newcomer@example.com",
            "password": "correct horse battery"}  # fmt: skip
    response = client.submit("/signup", form, page="/signup", headers=BROWSER)
    assert response.status_code in (302, 303)
    (moved,) = _rows(app, visitor_token=token)
    assert moved.user_id is not None and moved.variant == variant
    with app.app_context():
        user_id = db.session().scalar(
            select(Assignment.user_id).where(Assignment.visitor_token == token)
        )
    # Signed in now, the same person keeps the same variant (no second row).
    slug = _new_document(client)
    page = client.get(f"/d/{slug}", headers=BROWSER).get_data(as_text=True)
    assert f'data-variant="{variant}"' in page
    assert len(_rows(app, user_id=user_id)) == 1
