"""Trading states (issue 15, SPEC §12): desk, exchange and user levels, the strictest
wins; officers set them with a reason; a change raises a published `trading_state`
alert; breakers' `set_reducing` / `halt_trading` act on the owner's user level, only
stricter, honouring dry run; only an officer moves a level back to active."""

from decimal import Decimal

import pytest

from accounts.services.paper import paper_order_execute, paper_price_set
from accounts.services.sync import account_sync
from risk.constants import ActionStatus
from risk.models import BreakerTrip, RiskAlert, TradingState
from risk.services.config import global_config_get
from risk.services.evaluation import evaluation_run
from risk.services.snapshots import config_cache_clear
from risk.services.trading_state import trading_state_effective, trading_state_set, trading_state_tighten
from risk.tests.factories import CircuitBreakerFactory

pytestmark = [pytest.mark.django_db]

URL = "/api/v1/risk/trading-state"
D = Decimal


def put(client, **body):
    return client.put(URL, body, format="json")


def test_each_level_applies_and_the_strictest_wins(officer_client, trader, trader_client, make_exchange_account):
    make_exchange_account(trader, "paper")
    assert trader_client.get(URL).json()["state"] == "active"

    assert put(officer_client, level="desk", state="reducing", reason="month end").status_code == 200
    body = trader_client.get(URL).json()
    assert body["state"] == "reducing" and body["decided_by"] == "desk" and body["reason"] == "month end"

    response = put(officer_client, level="exchange", exchange="paper", state="halted", reason="venue issue")
    assert response.status_code == 200
    body = trader_client.get(URL, {"exchange": "paper"}).json()
    assert body["state"] == "halted" and body["decided_by"] == "exchange"
    assert body["exchanges"] == {"paper": "halted"}
    assert trader_client.get(URL).json()["state"] == "reducing"  # without an exchange: desk and user

    response = put(officer_client, level="user", user_id=str(trader.pk), state="halted", reason="review")
    assert response.status_code == 200 and response.json()["effective"] == "halted"
    response = put(officer_client, level="exchange", exchange="paper", state="active", reason="venue back")
    assert response.status_code == 200
    assert put(officer_client, level="desk", state="active", reason="done").status_code == 200
    body = trader_client.get(URL).json()
    assert body["state"] == "halted" and body["decided_by"] == "user"
    levels = {level["level"]: level for level in body["levels"]}
    assert levels["user"]["reason"] == "review" and levels["user"]["set_by"] is not None


def test_only_an_officer_sets_a_level_and_a_reason_is_required(trader, trader_client, officer_client):
    assert put(trader_client, level="user", user_id=str(trader.pk), state="halted", reason="x").status_code == 403
    response = put(officer_client, level="desk", state="halted", reason="  ")
    assert response.status_code == 400 and "reason" in response.json()["errors"]
    assert put(officer_client, level="desk", state="frozen", reason="x").status_code == 400
    assert put(officer_client, level="exchange", state="halted", reason="x").status_code == 400  # no exchange
    assert put(officer_client, level="user", state="halted", reason="x").status_code == 400  # no user_id
    body = {"level": "desk", "state": "halted", "reason": "x", "extra": 1}
    assert officer_client.put(URL, body, format="json").status_code == 400
    assert not TradingState.objects.exists()


def test_a_trader_sees_only_their_own_state(trader_client, officer_client, make_user):
    other = make_user()
    assert trader_client.get(URL, {"user_id": str(other.pk)}).status_code == 404
    assert officer_client.get(URL, {"user_id": str(other.pk)}).json()["user_id"] == str(other.pk)


def test_a_change_raises_a_published_trading_state_alert_for_each_user_it_applies_to(
    officer, officer_client, trader, make_user, make_exchange_account, published_alerts
):
    other = make_user()
    make_exchange_account(trader, "paper")
    make_exchange_account(other, "paper")
    put(officer_client, level="exchange", exchange="paper", state="reducing", reason="venue degraded")

    (message,) = published_alerts(trader)
    alert = message["alert"]
    assert alert["type"] == "trading_state" and alert["alert_type"] == "trading_state"
    assert alert["severity"] == "high" and alert["exchange"] == "paper"
    assert alert["context"]["state"] == "reducing" and alert["context"]["previous_state"] == "active"
    assert "venue degraded" in alert["description"]
    assert len(published_alerts(other)) == 1

    put(officer_client, level="exchange", exchange="paper", state="halted", reason="venue down")
    alerts = RiskAlert.objects.filter(user=trader, alert_type="trading_state")
    assert alerts.count() == 2 and alerts.exclude(status="resolved").get().metadata["state"] == "halted"


def test_a_change_is_audited_with_who_and_why(officer):
    trading_state_set(actor=officer, level="desk", state="halted", reason="incident")
    trading_state_set(actor=officer, level="desk", state="active", reason="resolved")
    history = TradingState.history.order_by("history_date")
    assert [(h.state, h.reason, h.history_user_id) for h in history] == [
        ("halted", "incident", officer.pk),
        ("active", "resolved", officer.pk),
    ]


def test_the_system_only_tightens_and_never_returns_to_active(trader, officer):
    assert trading_state_tighten(level="user", user_id=trader.pk, state="halted", reason="r", source="kill_switch")
    # reducing is looser than halted: nothing changes
    assert trading_state_tighten(level="user", user_id=trader.pk, state="reducing", reason="r", source="x") is None
    assert trading_state_effective(user_id=trader.pk).state == "halted"
    with pytest.raises(ValueError, match="never moves a trading state back to active"):
        trading_state_tighten(level="user", user_id=trader.pk, state="active", reason="r", source="x")
    trading_state_set(actor=officer, level="user", user_id=trader.pk, state="active", reason="cleared")
    assert trading_state_effective(user_id=trader.pk).state == "active"


@pytest.fixture
def losing_position(trader, make_exchange_account, no_caps):
    account = make_exchange_account(trader, "paper")
    paper_price_set(symbol="BTCUSDT", price=D(60000))
    paper_order_execute(account_id=account.pk, symbol="BTCUSDT", side="buy", amount=D("0.5"))
    paper_price_set(symbol="BTCUSDT", price=D(57000))  # unrealized -1500
    account_sync(account=account)
    return account


def _live(dry_run: bool) -> None:
    config = global_config_get()
    config.dry_run = dry_run
    config.save()
    config_cache_clear()


@pytest.mark.parametrize(("action", "state"), [("set_reducing", "reducing"), ("halt_trading", "halted")])
def test_breaker_action_sets_the_owners_user_level(trader, losing_position, action, state):
    _live(False)
    CircuitBreakerFactory(name="stop", condition_type="pnl", threshold=D(1000), action=action)
    evaluation_run(user_id=trader.pk)
    trip = BreakerTrip.objects.get()
    assert trip.action_status == ActionStatus.SUCCEEDED
    assert trip.action_result == f"Trading state of the position's owner set to {state}"
    row = TradingState.objects.get(level="user", user=trader)
    assert row.state == state and row.source == "circuit_breaker:stop" and row.set_by is None
    assert "Circuit breaker stop tripped" in row.reason
    assert RiskAlert.objects.filter(user=trader, alert_type="trading_state").count() == 1


def test_breaker_state_action_under_dry_run_only_says_what_it_would_do(trader, losing_position):
    CircuitBreakerFactory(name="stop", condition_type="pnl", threshold=D(1000), action="halt_trading")
    evaluation_run(user_id=trader.pk)
    trip = BreakerTrip.objects.get()
    assert trip.action_status == ActionStatus.DRY_RUN
    assert trip.action_result == "Dry run: would set the position owner's trading state to halted; nothing was sent"
    assert not TradingState.objects.exists()


def test_breaker_set_reducing_never_loosens_a_halted_user(trader, officer, losing_position):
    _live(False)
    trading_state_set(actor=officer, level="user", user_id=trader.pk, state="halted", reason="review")
    CircuitBreakerFactory(name="stop", condition_type="pnl", threshold=D(1000), action="set_reducing")
    evaluation_run(user_id=trader.pk)
    assert BreakerTrip.objects.get().action_result.endswith("already reducing or stricter")
    assert TradingState.objects.get(level="user", user=trader).state == "halted"
