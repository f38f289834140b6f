"""A risk officer who is not a superuser, in a real headless Chromium: logs in to the
admin, changes a limit's threshold in the list and sees the change through the API."""

import shutil
from decimal import Decimal

import pytest

from risk.models import RiskLimit
from risk.tests.factories import RiskLimitFactory

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which("chromium"), reason="chromium is not installed (apt-get install chromium)"),
]


def test_officer_changes_a_threshold_in_the_admin_and_the_api_sees_it(live_server, make_user, api_client_for):
    from playwright.sync_api import sync_playwright

    from conftest import TEST_PASSWORD

    officer = make_user("desk-officer", officer=True)
    assert not officer.is_superuser
    trader = make_user("desk-trader")
    limit = RiskLimitFactory(user=trader, threshold_value=Decimal(10000), warning_value=Decimal(8000))

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{live_server.url}/admin/login/?next=/admin/risk/risklimit/")
            page.fill("#id_username", "desk-officer")
            page.fill("#id_password", TEST_PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_url("**/admin/risk/risklimit/")
            assert "desk-trader" in page.content()

            page.fill("input[name='form-0-threshold_value']", "12500.5")
            page.click("input[name='_save']")
            page.wait_for_selector(".messagelist")
            assert "was changed successfully" in page.inner_text(".messagelist")
        finally:
            browser.close()

    response = api_client_for(trader).get(f"/api/v1/risk/limits/{limit.pk}")
    assert response.status_code == 200
    assert response.json()["threshold_value"] == "12500.50"
    assert response.json()["officer_set"] is True
    latest = RiskLimit.history.filter(id=limit.pk).latest("history_date")
    assert latest.history_user_id == officer.pk and latest.threshold_value == Decimal("12500.5")
