"""Success means filled (SPEC §5, issue 9 B5): a breaker's close that the venue
acknowledges without filling, fills in part or lets expire is recorded as failed or
partial, escalated in the alert and retried on the critical queue; the retry cancels
the order the venue left working and sends the remainder under the trip's next client
order id. Against the local Binance USD-M server through ccxt."""

from decimal import Decimal

import pytest

from accounts.exchanges.ccxt_orders import venue_client_order_id
from accounts.models import Position
from accounts.services.sync import account_sync
from jobs.models import Job
from risk.constants import ActionStatus
from risk.models import BreakerTrip, RiskAlert
from risk.services.config import global_config_update
from risk.services.evaluation import evaluation_run
from risk.services.trip_actions import trip_action_retry
from risk.tests.factories import CircuitBreakerFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_caps")]

D = Decimal


@pytest.fixture
def losing_long(trader, make_exchange_account, binance_server):
    """Long 0.5 BTCUSDT from 60,000 on the local Binance server, marked at 57,000, with
    a 1,000 stop-loss that closes it, live."""
    account = make_exchange_account(trader, "binanceusdm")
    binance_server.set_price("BTCUSDT", 60000)
    binance_server.fill("BTCUSDT", "BUY", "0.5")
    binance_server.set_price("BTCUSDT", 57000)
    account_sync(account=account)
    CircuitBreakerFactory(name="stop", condition_type="pnl", threshold=D(1000), action="close_position")
    global_config_update(actor=None, dry_run=False)
    return account


def size_now(account) -> Decimal:
    row = Position.objects.filter(account=account, symbol="BTCUSDT", closed_at__isnull=True).first()
    return row.size if row else D(0)


@pytest.mark.parametrize(
    ("script", "filled", "status"),
    [
        ("NEW", None, ActionStatus.FAILED),  # acknowledged, nothing filled
        ("PARTIALLY_FILLED", "0.2", ActionStatus.PARTIAL),
        ("EXPIRED", "0.1", ActionStatus.PARTIAL),
        ("EXPIRED", None, ActionStatus.FAILED),
    ],
)
def test_an_order_not_fully_filled_is_never_success_and_is_retried(
    trader, losing_long, binance_server, script, filled, status
):
    binance_server.script_next_order(script, filled=filled)
    result = evaluation_run(user_id=trader.pk)
    trip = BreakerTrip.objects.get()
    assert trip.action_status == status, trip.action_result
    assert "not fully filled" in trip.action_result or "not filled" in trip.action_result
    assert result.risk_level == "critical"  # the position is still exposed
    alert = RiskAlert.objects.get(alert_type="circuit_breaker")
    assert alert.metadata["escalated"] and alert.metadata["action_status"] == status
    assert f"Action {status.upper()} (attempt 1)" in alert.message
    assert Job.objects.filter(name="breaker_action_retry", priority="critical", args={"trip_id": str(trip.id)})

    trip_action_retry(trip_id=trip.id)  # what the queued job runs
    trip.refresh_from_db()
    assert trip.action_status == ActionStatus.SUCCEEDED, trip.action_result
    assert size_now(losing_long) == 0
    sent = [
        r.params.get("newClientOrderId") for r in binance_server.requests_to("/fapi/v1/order") if r.method == "POST"
    ]
    ours = [venue_client_order_id("binanceusdm", f"{trip.client_order_id}{suffix}") for suffix in ("", "-1")]
    assert [cid for cid in sent if cid in ours] == ours  # the first order, then the remainder under the next id
    if script != "EXPIRED":  # the order left working was cancelled before the remainder went out
        assert binance_server.requests_to("/fapi/v1/allOpenOrders")
    assert evaluation_run(user_id=trader.pk).risk_level != "critical"


def test_a_filled_close_succeeds_at_once(trader, losing_long, binance_server):
    evaluation_run(user_id=trader.pk)
    trip = BreakerTrip.objects.get()
    assert trip.action_status == ActionStatus.SUCCEEDED, trip.action_result
    assert trip.action_details["orders"][0]["status"] == "filled"
    assert not Job.objects.filter(name="breaker_action_retry").exists()
