"""The public status page: incidents posted and resolved by an admin, uptime, emails."""

from __future__ import annotations

import re
import time

import pytest
from aiosmtpd.controller import Controller

from app import create_app
from tests.ops.test_ready import free_port


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], str]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
        self.messages.append(
            (
                envelope.mail_from,
                list(envelope.rcpt_tos),
                envelope.content.decode("utf8", "replace"),
            )
        )
        return "250 OK"


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port, inbox
    controller.stop()


@pytest.fixture
def status_app(app, smtp, client):
    application = create_app(
        {
            **app.config,
            "SMTP_URL": f"smtp://127.0.0.1:{smtp[0]}",
            "MAIL_FROM": "status@quire.test",
            "STATUS_RECORD_SECONDS": 0,
        }
    )
    application.test_client_class = type(client)
    return application


def wait_for(predicate, timeout: float = 5.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_incident_lifecycle_uptime_and_emails(status_app, accounts, smtp):
    _, inbox = smtp
    accounts.create("root", admin=True)
    accounts.create("reader")
    admin = status_app.test_client()
    accounts.login(admin, "root")
    reader = status_app.test_client()
    accounts.login(reader, "reader")
    anonymous = status_app.test_client()

    # Healthy checks recorded, then Redis fails twice: the uptime shows it.
    good_redis = status_app.config.get("REDIS_URL") or ""
    assert anonymous.get("/ready").status_code == 200
    status_app.config["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    assert anonymous.get("/ready").status_code == 503
    assert anonymous.get("/ready").status_code == 503
    status_app.config["REDIS_URL"] = good_redis

    body = anonymous.get("/status.json").get_json()
    components = {c["id"]: c for c in body["components"]}
    assert set(components) == {"web", "live", "git", "database", "redis", "background"}
    assert components["database"]["uptime_90d_percent"] == 100.0
    assert components["web"]["uptime_90d_percent"] == 100.0
    # 3 /ready calls + 1 /status check: 1 or 2 of them ok (only 1 if Redis is not configured).
    redis_uptime = components["redis"]["uptime_90d_percent"]
    if good_redis:
        assert redis_uptime == pytest.approx(100 * 2 / 4)
    else:
        assert redis_uptime == pytest.approx(0.0)
        assert components["redis"]["state"] == "not used"
    assert components["database"]["state"] == "operational"
    assert body["incidents"] == []

    # A reader subscribes to incident emails.
    assert (
        reader.submit("/status/subscription", {"subscribe": "1"}, page="/status").status_code == 302
    )

    # Only site admins post incidents.
    assert (
        reader.submit(
            "/admin/incidents", {"title": "x", "status": "investigating"}, page="/status"
        ).status_code
        == 404
    )
    response = admin.submit(
        "/admin/incidents",
        {"title": "Saves are slow", "status": "investigating", "message": "Looking into it."},
        page="/status",
    )
    assert response.status_code == 302
    page = anonymous.get("/status").get_data(as_text=True)
    assert "Saves are slow" in page and "investigating" in page and "Looking into it." in page
    assert "Some systems are degraded." in page
    incident_id = int(re.search(r'id="incident-(\d+)"', page).group(1))
    wait_for(lambda: len(inbox.messages) == 1)
    sender, rcpts, content = inbox.messages[0]
    assert sender == "status@quire.test" and rcpts == ["reader@example.com"]
    assert "Subject: [investigating] Saves are slow" in content and "Looking into it." in content

    admin.submit(
        f"/admin/incidents/{incident_id}",
        {"status": "identified", "message": "A slow disk."},
        page="/status",
    )
    admin.submit(
        f"/admin/incidents/{incident_id}",
        {"status": "resolved", "message": "Disk replaced."},
        page="/status",
    )
    incident = anonymous.get("/status.json").get_json()["incidents"][0]
    assert incident["status"] == "resolved" and incident["resolved_at"]
    assert [u["status"] for u in incident["updates"]] == ["resolved", "identified", "investigating"]
    assert incident["updates"][0]["message"] == "Disk replaced."
    stamps = [u["created_at"] for u in incident["updates"]]
    assert stamps == sorted(stamps, reverse=True)
    wait_for(lambda: len(inbox.messages) == 3)
    assert "[resolved] Saves are slow" in inbox.messages[-1][2]
    page = anonymous.get("/status").get_data(as_text=True)
    assert "All systems operational." in page
    assert "Post an incident" not in page  # no admin controls for the public

    # Unsubscribed: no more email.
    reader.submit("/status/subscription", {"subscribe": "0"}, page="/status")
    admin.submit("/admin/incidents", {"title": "Another", "status": "identified"}, page="/status")
    time.sleep(0.3)
    assert len(inbox.messages) == 3


def test_status_page_renders_for_everyone(app):
    response = app.test_client().get("/status")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Live editing" in html and "Git over HTTP" in html and "Background work" in html
    assert "No incidents reported." in html
