"""Audit history of limits, breakers and configs (API and admin: who, when, old and new)
and the admin console as a risk officer who is not a superuser."""

from decimal import Decimal

import pytest
from django.urls import reverse

from risk.constants import AlertStatus
from risk.models import CircuitBreaker, ExchangeConfig, GlobalConfig, RiskLimit, SymbolConfig
from risk.tests.factories import CircuitBreakerFactory, RiskAlertFactory, RiskLimitFactory

pytestmark = pytest.mark.django_db


# --- audit through the API -------------------------------------------------------------------
def test_limit_history_records_api_callers_and_values(trader_client, officer_client, trader, officer):
    created = trader_client.post(
        "/api/v1/risk/limits", {"limit_type": "total_exposure", "threshold_value": 5000}, format="json"
    ).json()
    officer_client.patch(f"/api/v1/risk/limits/{created['id']}", {"threshold_value": 4000}, format="json")
    officer_client.delete(f"/api/v1/risk/limits/{created['id']}")

    history = list(RiskLimit.history.filter(id=created["id"]).order_by("history_date"))
    assert [row.history_type for row in history] == ["+", "~", "-"]
    assert [row.history_user_id for row in history] == [trader.pk, officer.pk, officer.pk]
    delta = history[1].diff_against(history[0])
    changes = {change.field: (change.old, change.new) for change in delta.changes}
    assert changes["threshold_value"] == (Decimal("5000"), Decimal("4000"))
    assert changes["set_by"] == (trader.pk, officer.pk)


def test_breaker_and_config_history_record_api_callers(officer_client, officer):
    officer_client.post(
        "/api/v1/risk/circuit-breakers",
        {"name": "cb", "condition_type": "pnl", "threshold": 100, "action": "close_position"},
        format="json",
    )
    officer_client.put("/api/v1/config/circuit-breakers/cb", {"updates": {"threshold": 200}}, format="json")
    officer_client.put("/api/v1/risk/circuit-breakers/cb/disable")
    officer_client.put("/api/v1/config/global", {"settings": {"dry_run": False}}, format="json")
    officer_client.put("/api/v1/config/symbols/BTCUSDT", {"settings": {"max_leverage": 3}}, format="json")
    officer_client.post("/api/v1/config/reset")

    breaker_history = list(CircuitBreaker.history.filter(name="cb").order_by("history_date"))
    assert [(row.threshold, row.enabled) for row in breaker_history] == [
        (Decimal("100"), True),
        (Decimal("200"), True),
        (Decimal("200"), False),
    ]
    assert {row.history_user_id for row in breaker_history} == {officer.pk}

    global_history = list(GlobalConfig.history.order_by("history_date"))
    assert [row.dry_run for row in global_history][-2:] == [False, True]
    assert {row.history_user_id for row in global_history[-2:]} == {officer.pk}

    symbol_history = list(SymbolConfig.history.filter(symbol="BTCUSDT").order_by("history_date"))
    assert [row.history_type for row in symbol_history] == ["+", "-"]  # created, then removed by reset
    assert {row.history_user_id for row in symbol_history} == {officer.pk}


def test_history_holds_no_tracking_state():
    fields = {field.name for field in RiskLimit.history.model._meta.fields}
    assert "equity_peaks" not in fields
    fields = {field.name for field in CircuitBreaker.history.model._meta.fields}
    assert "trigger_count" not in fields and "last_triggered_at" not in fields


# --- the admin, as a risk officer who is not a superuser ---------------------------------------
@pytest.fixture
def officer_admin(client, officer):
    assert not officer.is_superuser and officer.is_staff
    client.force_login(officer)
    return client


ADMIN_PAGES = [
    "risk_risklimit",
    "risk_riskalert",
    "risk_circuitbreaker",
    "risk_breakertrip",
    "risk_symbolconfig",
    "risk_exchangeconfig",
    "risk_historicalrisklimit",
    "risk_historicalcircuitbreaker",
    "risk_historicalglobalconfig",
    "risk_historicalsymbolconfig",
    "risk_historicalexchangeconfig",
]


@pytest.mark.parametrize("page", ADMIN_PAGES)
def test_officer_sees_every_risk_page(officer_admin, trader, page):
    RiskLimitFactory(user=trader)
    RiskAlertFactory(user=trader)
    CircuitBreakerFactory()
    response = officer_admin.get(reverse(f"admin:{page}_changelist"))
    assert response.status_code == 200


def test_trader_cannot_enter_the_admin(client, trader):
    client.force_login(trader)
    response = client.get(reverse("admin:risk_risklimit_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_global_config_is_a_singleton(officer_admin):
    response = officer_admin.get(reverse("admin:risk_globalconfig_changelist"))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:risk_globalconfig_change", args=[1])
    assert officer_admin.get(reverse("admin:risk_globalconfig_add")).status_code == 403
    assert officer_admin.get(reverse("admin:risk_globalconfig_delete", args=[1])).status_code == 403


def test_global_config_change_in_admin_is_audited(officer_admin, officer):
    url = reverse("admin:risk_globalconfig_change", args=[1])
    page = officer_admin.get(url)
    assert page.status_code == 200
    form = {
        "max_total_exposure": "2000000",
        "max_leverage": "10",
        "max_drawdown_pct": "20",
        "daily_loss_limit": "50000",
        "max_margin_ratio": "0.8",
        "dry_run": "",  # unchecked: off
        "monitoring_interval_seconds": "60",
        "alert_cooldown_seconds": "300",
        "max_price_age_seconds": "10",
        "escalate_after_seconds": "300",
    }
    response = officer_admin.post(url, form)
    assert response.status_code == 302, response.content[:2000]
    config = GlobalConfig.objects.get()
    assert config.max_total_exposure == 2000000 and config.dry_run is False
    latest = GlobalConfig.history.latest("history_date")
    assert latest.history_user_id == officer.pk
    history_page = officer_admin.get(reverse("admin:risk_globalconfig_history", args=[1]))
    assert history_page.status_code == 200 and officer.username in history_page.content.decode()


def _changelist_edit(client, model, objects, values: dict):
    """POST the changelist's list-editable formset as the browser does."""
    data = {
        "form-TOTAL_FORMS": str(len(objects)),
        "form-INITIAL_FORMS": str(len(objects)),
        "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    for index, (obj, fields) in enumerate(zip(objects, values, strict=True)):
        data[f"form-{index}-id"] = str(obj.pk)
        for name, value in fields.items():
            data[f"form-{index}-{name}"] = value
    return client.post(reverse(f"admin:risk_{model}_changelist"), data)


def test_list_editable_limit_threshold_is_audited(officer_admin, officer, trader):
    limit = RiskLimitFactory(user=trader, threshold_value=10000, warning_value=8000)
    response = _changelist_edit(
        officer_admin,
        "risklimit",
        [limit],
        [{"threshold_value": "12000", "warning_value": "8000", "enabled": "on"}],
    )
    assert response.status_code == 302, response.content[:3000]
    limit.refresh_from_db()
    assert limit.threshold_value == 12000 and limit.set_by_id == officer.pk
    latest = RiskLimit.history.filter(id=limit.pk).latest("history_date")
    assert latest.history_user_id == officer.pk and latest.threshold_value == 12000
    assert officer_admin.get(reverse("admin:risk_risklimit_history", args=[limit.pk])).status_code == 200
    changes = officer_admin.get(reverse("admin:risk_historicalrisklimit_changelist")).content.decode()
    assert "threshold_value: 10000" in changes and "12000" in changes


def test_list_editable_rejects_a_warning_above_threshold(officer_admin, trader):
    limit = RiskLimitFactory(user=trader, threshold_value=10000, warning_value=8000)
    response = _changelist_edit(
        officer_admin, "risklimit", [limit], [{"threshold_value": "7000", "warning_value": "8000", "enabled": "on"}]
    )
    assert response.status_code == 200  # the changelist again, with the error
    assert "Must be below threshold_value" in response.content.decode()
    limit.refresh_from_db()
    assert limit.threshold_value == 10000


def test_add_limit_in_admin_is_officer_set(officer_admin, officer, trader):
    response = officer_admin.post(
        reverse("admin:risk_risklimit_add"),
        {"user": str(trader.pk), "symbol": "ETHUSDT", "limit_type": "position_size", "threshold_value": "500"},
    )
    assert response.status_code == 302, response.content[:3000]
    limit = RiskLimit.objects.get()
    assert limit.user_id == trader.pk and limit.set_by_id == officer.pk and limit.officer_set
    assert RiskLimit.history.get(id=limit.pk).history_user_id == officer.pk


def test_limit_actions(officer_admin, trader):
    limits = [RiskLimitFactory(user=trader, symbol=f"S{index}USDT") for index in range(2)]
    officer_admin.post(
        reverse("admin:risk_risklimit_changelist"),
        {"action": "disable_limits", "_selected_action": [str(limit.pk) for limit in limits]},
    )
    assert not RiskLimit.objects.filter(enabled=True).exists()
    officer_admin.post(
        reverse("admin:risk_risklimit_changelist"),
        {"action": "enable_limits", "_selected_action": [str(limits[0].pk)]},
    )
    assert list(RiskLimit.objects.filter(enabled=True)) == [limits[0]]


def test_alert_actions(officer_admin, officer, trader):
    alerts = [RiskAlertFactory(user=trader) for _ in range(2)]
    url = reverse("admin:risk_riskalert_changelist")
    officer_admin.post(url, {"action": "acknowledge_alerts", "_selected_action": [str(alerts[0].pk)]})
    alerts[0].refresh_from_db()
    assert alerts[0].status == AlertStatus.ACKNOWLEDGED and alerts[0].acknowledged_by_id == officer.pk
    officer_admin.post(url, {"action": "resolve_alerts", "_selected_action": [str(alert.pk) for alert in alerts]})
    for alert in alerts:
        alert.refresh_from_db()
        assert alert.status == AlertStatus.RESOLVED
    assert officer_admin.get(reverse("admin:risk_riskalert_add")).status_code == 403


def test_breaker_admin_add_validates_params_and_audits(officer_admin, officer):
    url = reverse("admin:risk_circuitbreaker_add")
    base = {
        "name": "adm-pnl",
        "description": "",
        "condition_type": "pnl",
        "threshold": "100",
        "action": "close_position",
        "symbols": "null",
        "exchanges": "null",
        "enabled": "on",
        "cooldown_seconds": "300",
        "trips-TOTAL_FORMS": "0",
        "trips-INITIAL_FORMS": "0",
        "trips-MIN_NUM_FORMS": "0",
        "trips-MAX_NUM_FORMS": "0",
    }
    bad = officer_admin.post(url, {**base, "additional_params": '{"direction": "sideways"}'})
    assert bad.status_code == 200 and "direction must be" in bad.content.decode()
    assert not CircuitBreaker.objects.exists()

    good = officer_admin.post(url, {**base, "additional_params": '{"direction": "profit"}', "symbols": '["btcusdt"]'})
    assert good.status_code == 302, good.content[:3000]
    breaker = CircuitBreaker.objects.get()
    assert breaker.additional_params == {"direction": "profit"} and breaker.symbols == ["BTCUSDT"]
    assert CircuitBreaker.history.get(name="adm-pnl").history_user_id == officer.pk


def test_breaker_list_edit_and_actions(officer_admin, officer):
    breaker = CircuitBreakerFactory(threshold=100)
    response = _changelist_edit(officer_admin, "circuitbreaker", [breaker], [{"threshold": "250", "enabled": "on"}])
    assert response.status_code == 302, response.content[:3000]
    breaker.refresh_from_db()
    assert breaker.threshold == 250
    assert CircuitBreaker.history.filter(name=breaker.name).latest("history_date").history_user_id == officer.pk
    url = reverse("admin:risk_circuitbreaker_changelist")
    officer_admin.post(url, {"action": "disable_breakers", "_selected_action": [str(breaker.pk)]})
    breaker.refresh_from_db()
    assert breaker.enabled is False
    officer_admin.post(url, {"action": "enable_breakers", "_selected_action": [str(breaker.pk)]})
    breaker.refresh_from_db()
    assert breaker.enabled is True
    assert officer_admin.get(reverse("admin:risk_circuitbreaker_change", args=[breaker.pk])).status_code == 200


def test_symbol_config_admin(officer_admin, officer):
    response = officer_admin.post(
        reverse("admin:risk_symbolconfig_add"),
        {"symbol": "ethusdt", "max_position_size": "1000", "max_leverage": "", "trading_enabled": "on"},
    )
    assert response.status_code == 302, response.content[:3000]
    config = SymbolConfig.objects.get()
    assert config.symbol == "ETHUSDT" and config.max_position_size == 1000
    assert SymbolConfig.history.get(symbol="ETHUSDT").history_user_id == officer.pk


def test_exchange_config_admin_saves_2_5_million_exposure_through_the_settings_schema(officer_admin, officer):
    response = officer_admin.post(
        reverse("admin:risk_exchangeconfig_add"),
        {"exchange": "binance", "max_exposure": "2500000.5", "enabled": "on", "dead_mans_switch_seconds": "60"},
    )
    assert response.status_code == 302, response.content[:3000]
    config = ExchangeConfig.objects.get()
    assert (config.exchange, config.max_exposure, config.enabled, config.testnet) == (
        "binance",
        Decimal("2500000.5"),
        True,
        False,
    )
    assert config.dead_mans_switch_seconds == 60
    assert ExchangeConfig.history.get(exchange="binance").history_user_id == officer.pk


def test_evaluate_now_actions(officer_admin, trader, no_caps):
    from risk.models import RiskAlert
    from risk.tests import books

    books.position(books.account(trader), "BTCUSDT", size="3", entry="100")
    limit = RiskLimitFactory(user=trader, threshold_value=Decimal(100), warning_value=None)
    response = officer_admin.post(
        reverse("admin:risk_risklimit_changelist"),
        {"action": "evaluate_now", "_selected_action": [str(limit.pk)]},
        follow=True,
    )
    assert "Evaluated 1 user(s): 1 critical." in response.content.decode()
    assert RiskAlert.objects.get().alert_type == "position_size_exceeded"

    breaker = CircuitBreakerFactory(name="oversize", threshold=Decimal(100))
    response = officer_admin.post(
        reverse("admin:risk_circuitbreaker_changelist"),
        {"action": "evaluate_now", "_selected_action": [str(breaker.pk)]},
        follow=True,
    )
    assert "1 new trip(s)" in response.content.decode()
    page = officer_admin.get(reverse("admin:risk_circuitbreaker_change", args=[breaker.pk])).content.decode()
    assert "trip history" in page.lower() and "Dry run: would close" in page


def test_rearm_actions(officer_admin, officer, trader, no_caps):
    from risk.models import BreakerTrip
    from risk.services.evaluation import evaluation_run
    from risk.tests import books

    books.position(books.account(trader), "BTCUSDT", size="3", entry="100")
    breaker = CircuitBreakerFactory(name="oversize", threshold=Decimal(100))
    evaluation_run(user_id=trader.pk)
    trip = BreakerTrip.objects.get()
    officer_admin.post(
        reverse("admin:risk_breakertrip_changelist"), {"action": "rearm_trips", "_selected_action": [str(trip.pk)]}
    )
    trip.refresh_from_db()
    assert trip.released_by_id == officer.pk and trip.release_reason == "rearmed"
    evaluation_run(user_id=trader.pk)
    officer_admin.post(
        reverse("admin:risk_circuitbreaker_changelist"),
        {"action": "rearm_breakers", "_selected_action": [str(breaker.pk)]},
    )
    assert BreakerTrip.objects.filter(released_at__isnull=True).count() == 0
    assert BreakerTrip.objects.count() == 2
