"""The admin as a risk officer's tool (issue 13 item 4): decimals as people write them,
and an index grouped for the job."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import Position
from accounts.services.paper import paper_order_execute, paper_price_set
from accounts.services.sync import account_sync
from risk.constants import AlertStatus
from risk.tests.factories import CircuitBreakerFactory, RiskAlertFactory, RiskLimitFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def officer_admin(client, officer):
    client.force_login(officer)
    return client


@pytest.fixture
def half_btc_at_60000(trader, make_exchange_account):
    account = make_exchange_account(trader, "paper")
    paper_price_set(symbol="BTCUSDT", price=Decimal(60000))
    paper_order_execute(account_id=account.pk, symbol="BTCUSDT", side="buy", amount=Decimal("0.5"))
    account_sync(account=account)
    return Position.objects.get(account=account, closed_at__isnull=True)


def _cell(html: str, column: str) -> list[str]:
    """The texts of the changelist's `column` cells."""
    return [
        re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(rf'class="field-{column}[^"]*">(.*?)</t[dh]>', html)
    ]


def test_position_list_and_detail_show_0_5_and_60_000_not_their_stored_places(officer_admin, half_btc_at_60000):
    listing = officer_admin.get(reverse("admin:accounts_position_changelist")).content.decode()
    assert _cell(listing, "size") == ["0.5"]
    assert _cell(listing, "entry_price") == ["60,000"]
    assert _cell(listing, "notional") == ["30,000"]
    assert "60000.0000" not in listing

    detail = officer_admin.get(reverse("admin:accounts_position_change", args=[half_btc_at_60000.pk]))
    assert detail.status_code == 200
    page = detail.content.decode()
    readonly = dict(re.findall(r'<div class="form-row field-(\w+)">.*?<div class="readonly">(.*?)</div>', page, re.S))
    assert readonly["size"] == "0.5" and readonly["entry_price"] == "60,000"
    assert "60000.0000" not in page and "0.50000" not in page


def test_limit_list_edits_15_and_shows_250_000_as_written(officer_admin, trader):
    RiskLimitFactory(user=trader, limit_type="position_size", threshold_value=Decimal("15"), warning_value=None)
    RiskLimitFactory(user=trader, limit_type="total_exposure", symbol=None, threshold_value=Decimal("250000"))
    listing = officer_admin.get(reverse("admin:risk_risklimit_changelist")).content.decode()
    inputs = re.findall(r'name="form-\d+-threshold_value"[^>]*value="([^"]*)"', listing)
    inputs += re.findall(r'value="([^"]*)"[^>]*name="form-\d+-threshold_value"', listing)
    assert sorted(inputs) == ["15", "250000"]  # inputs parse back: no grouping in them
    assert "15.000000000000" not in listing and "250000.000000000000" not in listing


def test_breaker_form_and_trip_history_show_thresholds_as_written(officer_admin):
    breaker = CircuitBreakerFactory(threshold=Decimal("50000"))
    form = officer_admin.get(reverse("admin:risk_circuitbreaker_change", args=[breaker.pk])).content.decode()
    assert re.search(r'name="threshold"[^>]*value="50000"|value="50000"[^>]*name="threshold"', form)
    listing = officer_admin.get(reverse("admin:risk_circuitbreaker_changelist")).content.decode()
    assert "50000.000000000000" not in listing


def test_the_index_puts_risk_first_then_accounts_and_jobs_with_paper_and_history_apart(officer_admin):
    response = officer_admin.get(reverse("admin:index"))
    sections = [(app["name"], [m["object_name"] for m in app["models"]]) for app in response.context["app_list"]]
    names = [name for name, _ in sections]
    assert names[:3] == ["Risk", "Accounts and positions", "Jobs"]
    assert names.index("Paper exchange (simulated venue internals)") > names.index("Jobs")
    assert names[-1] == "Change history"
    risk = dict(sections)["Risk"]
    assert risk[:3] == ["RiskAlert", "RiskLimit", "LimitChange"]
    everyday = [model for name, models in sections if name != "Change history" for model in models]
    assert not [model for model in everyday if model.startswith("Historical")]
    assert not [model for model in dict(sections)["Accounts and positions"] if model.startswith("Paper")]
    assert all(model.startswith("Historical") for model in dict(sections)["Change history"])
    # an app's own page still lists that app's models
    risk_app = officer_admin.get(reverse("admin:app_list", kwargs={"app_label": "risk"}))
    assert {app["app_label"] for app in risk_app.context["app_list"]} == {"risk"}


def test_the_admin_alert_status_filter_is_the_api_filter(officer_admin, officer_client, trader):
    RiskAlertFactory(user=trader)
    acknowledged = RiskAlertFactory(user=trader, status=AlertStatus.ACKNOWLEDGED)
    response = officer_admin.get(reverse("admin:risk_riskalert_changelist") + "?status=acknowledged")
    assert [alert.pk for alert in response.context["cl"].result_list] == [acknowledged.pk]
    choices = [choice["display"] for choice in response.context["cl"].filter_specs[0].choices(response.context["cl"])]
    assert choices == ["All", *AlertStatus.labels]
    api = officer_client.get("/api/v1/risk/alerts?status=acknowledged").json()["alerts"]
    assert [alert["id"] for alert in api] == [str(acknowledged.pk)]


def test_every_admin_page_renders_with_decimals_as_written(client, make_user, half_btc_at_60000, trader):
    """The decimal display is added to every registered admin: each list, add form and
    an existing row's page still render."""
    from django.contrib import admin

    RiskLimitFactory(user=trader)
    CircuitBreakerFactory()
    client.force_login(make_user(is_superuser=True, is_staff=True))
    for model, model_admin in admin.site._registry.items():
        prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        listing = client.get(reverse(f"{prefix}_changelist"), follow=True)
        assert listing.status_code == 200, prefix
        if model_admin.has_add_permission(listing.wsgi_request):  # the kill switch's add is its engage form
            assert client.get(reverse(f"{prefix}_add"), follow=True).status_code == 200, prefix
        row = model._default_manager.first()
        if row is not None:
            assert client.get(reverse(f"{prefix}_change", args=[row.pk])).status_code == 200, prefix
