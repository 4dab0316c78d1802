"""The analytics dashboard in a real browser against a real gunicorn + gevent server.

A site admin opens /admin/analytics on a seeded history (``flask analytics seed``),
changes the date range and time zone with the form, and downloads the daily table
as CSV: the file has the right header and one row per day of the new range. A
signed-in member who is not a site admin gets 403.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS, require_browser
from tests.live.conftest import PASSWORD, Server, server  # noqa: F401 - the server fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]

require_browser()

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

UNLABELLED_FIELDS_JS = """() => Array.from(document.querySelectorAll('input, select, textarea'))
  .filter((el) => el.type !== 'hidden')
  .filter((el) => !Array.from(el.labels || []).some((l) => l.textContent.trim())
                  && !(el.getAttribute('aria-label') || '').trim())
  .map((el) => el.outerHTML)"""


def _sign_in(browser: Browser, srv: Server, username: str) -> Page:
    page = browser.new_context(accept_downloads=True).new_page()
    page.goto(srv.base_url + "/login")
    page.fill("#login", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(srv.base_url + "/")
    return page


def test_admin_changes_the_range_and_exports_csv(server: Server) -> None:  # noqa: F811
    server.user("boss", admin=True)
    server.user("reader")
    server.flask("analytics", "seed", "--events", "5000", "--users", "80", "--days", "60")
    today = datetime.now(UTC).date()
    start, end = today - timedelta(days=20), today - timedelta(days=1)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = _sign_in(browser, server, "boss")
            response = page.goto(server.base_url + "/admin/analytics")
            assert response is not None and response.status == 200, server.tail()
            expect(page.get_by_role("heading", level=1)).to_contain_text("Analytics")
            expect(page.locator("[data-kpi=mau]")).not_to_have_text("0")
            chart = page.get_by_role("img", name="Active users per day")
            expect(chart).to_be_visible()
            assert page.locator("svg desc").first.text_content().startswith("Active users per day")
            assert page.evaluate(UNLABELLED_FIELDS_JS) == []
            assert page.locator("#table-daily tbody tr").count() == 30  # the default range

            page.fill("#range-from", start.isoformat())
            page.fill("#range-to", end.isoformat())
            page.fill("#range-tz", "Europe/Paris")
            page.get_by_role("button", name="Apply").click()
            page.wait_for_url(f"**/admin/analytics?from={start}&to={end}&tz=Europe%2FParis")
            expect(page.locator(".analytics-head p")).to_have_text(
                f"{start} to {end} (Europe/Paris)"
            )
            assert page.locator("#table-daily tbody tr").count() == 20
            # The other pages keep the range.
            features = page.get_by_role("link", name="Features")
            assert f"from={start}" in (features.get_attribute("href") or "")

            page.get_by_text("Active users per day as a table").click()
            with page.expect_download() as download_info:
                page.locator("#table-daily").get_by_role("link", name="Download CSV").click()
            download = download_info.value
            assert download.suggested_filename == f"quire-daily-{start}-{end}.csv"
            rows = list(csv.reader(io.StringIO(Path(download.path()).read_text())))
            assert rows[0] == ["date", "active_users", "events"]
            assert [r[0] for r in rows[1:]] == [
                (start + timedelta(days=i)).isoformat() for i in range(20)
            ]
            assert sum(int(r[2]) for r in rows[1:]) > 0

            member = _sign_in(browser, server, "reader")
            denied = member.goto(server.base_url + "/admin/analytics")
            assert denied is not None and denied.status == 403
            csv_denied = member.request.get(
                server.base_url + "/admin/analytics?format=csv&table=daily"
            )
            assert csv_denied.status == 403
        finally:
            browser.close()
