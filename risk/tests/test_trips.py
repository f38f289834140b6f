"""Circuit breaker trips end to end (SPEC §5) on the paper exchange: latching, dry run
versus real actions (close, reduce, cancel), failures retried on the critical queue,
stale data, release after the cooldown, streaks and officer re-arms, volatility from
recorded samples, the critical alert and risk level, and the event hook."""

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import PaperOrder, PaperPosition, Position
from accounts.services.paper import paper_order_execute, paper_price_set
from accounts.services.sync import account_sync
from jobs.models import Job
from risk.api.outputs import evaluation_out
from risk.constants import ActionStatus
from risk.models import BreakerTrip, CircuitBreaker, RiskAlert
from risk.services import prices
from risk.services.config import global_config_get
from risk.services.evaluation import evaluation_run
from risk.services.snapshots import config_cache_clear
from risk.services.trip_actions import trip_action_retry
from risk.services.trips import trip_rearm
from risk.tests import books
from risk.tests.factories import CircuitBreakerFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_caps")]

D = Decimal


@pytest.fixture
def paper(trader, make_exchange_account):
    """The trader's paper account, long 0.5 BTCUSDT from 60,000, synced."""
    account = make_exchange_account(trader, "paper")
    paper_price_set(symbol="BTCUSDT", price=D(60000))
    paper_order_execute(account_id=account.pk, symbol="BTCUSDT", side="buy", amount=D("0.5"))
    account_sync(account=account)
    return account


def move(account, price) -> Position:
    paper_price_set(symbol="BTCUSDT", price=D(price))
    account_sync(account=account)
    return Position.objects.get(account=account, symbol="BTCUSDT", closed_at__isnull=True)


def live(dry_run: bool) -> None:
    config = global_config_get()
    config.dry_run = dry_run
    config.save()
    config_cache_clear()


def stop_loss(**fields) -> CircuitBreaker:
    defaults = {"name": "stop", "condition_type": "pnl", "threshold": D(1000), "action": "close_position"}
    return CircuitBreakerFactory(**{**defaults, **fields})


def test_dry_run_trips_once_and_sends_nothing(trader, paper, published_alerts):
    breaker = stop_loss()
    move(paper, 57000)  # unrealized -1500
    first = evaluation_out(evaluation_run(user_id=trader.pk))
    second = evaluation_out(evaluation_run(user_id=trader.pk))

    trip = BreakerTrip.objects.get()
    assert trip.action_status == ActionStatus.DRY_RUN and trip.dry_run
    assert trip.action_result.startswith("Dry run: would close the long 0.5 BTCUSDT position on paper")
    assert "reduce-only market sell of 0.5" in trip.action_result
    assert PaperPosition.objects.get(account=paper).size == D("0.5")  # nothing was sent
    assert not PaperOrder.objects.filter(account=paper, reduce_only=True).exists()
    breaker.refresh_from_db()
    assert breaker.trigger_count == 1 and breaker.last_triggered_at is not None

    (report,) = first["circuit_breakers"]
    assert report["name"] == "stop" and report["triggered"] and report["new_trip"]
    assert report["action"] == "close_position" and report["action_result"] == trip.action_result
    assert second["circuit_breakers"][0]["triggered"] and not second["circuit_breakers"][0]["new_trip"]
    assert first["risk_level"] == "critical" == second["risk_level"]

    alert = RiskAlert.objects.get(alert_type="circuit_breaker")
    assert alert.severity == "critical" and alert.user_id == trader.pk
    messages = [m["alert"] for m in published_alerts(trader)]
    breaker_alerts = [m for m in messages if m["type"] == "circuit_breaker"]
    assert breaker_alerts[-1]["condition_name"] == "stop"
    assert breaker_alerts[-1]["action_result"] == trip.action_result
    assert breaker_alerts[-1]["context"]["unrealized_pnl"] == -1500.0


def test_real_close_on_paper(trader, paper):
    live(dry_run=False)
    stop_loss()
    position = move(paper, 57000)
    result = evaluation_out(evaluation_run(user_id=trader.pk))
    trip = BreakerTrip.objects.get()
    assert trip.action_status == ActionStatus.SUCCEEDED, trip.action_result
    assert trip.action_result.startswith("Position closed: reduce-only market sell of 0.5 BTCUSDT on paper")
    assert not PaperPosition.objects.filter(account=paper).exists()
    order = PaperOrder.objects.get(client_order_id=trip.client_order_id)
    assert order.reduce_only and order.status == "closed" and order.filled == D("0.5")
    position.refresh_from_db()
    assert position.closed_at is not None  # the re-sync after the order saw it closed
    assert result["circuit_breakers"][0]["action_status"] == "succeeded"
    # evaluating again acts no more: the position is gone, the trip latched then released
    evaluation_run(user_id=trader.pk)
    assert BreakerTrip.objects.count() == 1 and PaperOrder.objects.filter(reduce_only=True).count() == 1


def test_real_reduce_on_paper(trader, paper):
    live(dry_run=False)
    CircuitBreakerFactory(
        name="halve",
        condition_type="max_position_size",
        threshold=D(25000),
        action="reduce_position_size",
        additional_params={"reduce_pct": 40},
    )
    move(paper, 60000)  # notional 30,000
    evaluation_run(user_id=trader.pk)
    trip = BreakerTrip.objects.get()
    assert trip.action_status == ActionStatus.SUCCEEDED, trip.action_result
    assert "reduced by 40%" in trip.action_result
    assert PaperPosition.objects.get(account=paper).size == D("0.3")
    assert Position.objects.get(account=paper, closed_at__isnull=True).size == D("0.3")


def test_dry_run_reduce_says_what_it_would_do(trader, paper):
    CircuitBreakerFactory(
        name="halve", condition_type="max_position_size", threshold=D(25000), action="reduce_position_size"
    )
    evaluation_run(user_id=trader.pk)
    trip = BreakerTrip.objects.get()
    assert trip.action_result == (
        "Dry run: would reduce the long 0.5 BTCUSDT position on paper by 50% with a reduce-only market sell "
        "of 0.25; nothing was sent"
    )
    assert PaperPosition.objects.get(account=paper).size == D("0.5")


def test_real_cancel_all_orders_on_paper(trader, paper):
    paper_order_execute(
        account_id=paper.pk, symbol="BTCUSDT", side="buy", amount=D("0.1"), type="limit", price=D(50000)
    )
    paper_order_execute(account_id=paper.pk, symbol="ETHUSDT", side="buy", amount=D("1"), type="limit", price=D(100))
    CircuitBreakerFactory(name="cancel", condition_type="max_position_size", threshold=D(1), action="cancel_all_orders")
    evaluation_run(user_id=trader.pk)  # dry run first
    assert PaperOrder.objects.filter(status="open").count() == 2
    assert (
        BreakerTrip.objects.get().action_result
        == "Dry run: would cancel all open BTCUSDT orders on paper; nothing was sent"
    )

    BreakerTrip.objects.all().delete()
    live(dry_run=False)
    evaluation_run(user_id=trader.pk)
    trip = BreakerTrip.objects.get()
    assert trip.action_status == ActionStatus.SUCCEEDED
    assert trip.action_result == "Cancelled 1 open BTCUSDT order(s) on paper"
    assert set(PaperOrder.objects.filter(type="limit").values_list("symbol", "status")) == {
        ("BTCUSDT", "canceled"),
        ("ETHUSDT", "open"),
    }
    assert PaperPosition.objects.get(account=paper).size == D("0.5")


def test_a_failed_action_is_loud_and_retried_on_the_critical_queue(trader, paper):
    live(dry_run=False)
    stop_loss()
    move(paper, 57000)
    PaperPosition.objects.filter(account=paper).delete()  # the venue no longer holds it: reduce-only is refused
    evaluation_run(user_id=trader.pk)

    trip = BreakerTrip.objects.get()
    assert trip.action_status == ActionStatus.FAILED
    assert "ReduceOnly" in trip.action_error and trip.action_result.startswith("FAILED")
    alert = RiskAlert.objects.get(alert_type="circuit_breaker")
    assert "Action FAILED" in alert.message and alert.metadata["escalated"] is True
    assert alert.metadata["action_status"] == "failed"
    job = Job.objects.get(name="breaker_action_retry")
    assert job.priority == "critical" and job.args == {"trip_id": str(trip.pk)}

    with pytest.raises(RuntimeError):  # still failing: the job machinery retries, then dead-letters
        trip_action_retry(trip_id=trip.pk)
    paper_order_execute(account_id=paper.pk, symbol="BTCUSDT", side="buy", amount=D("0.5"))
    outcome = trip_action_retry(trip_id=trip.pk)
    assert outcome["status"] == "succeeded"
    trip.refresh_from_db()
    assert trip.action_attempts == 3 and trip.action_status == ActionStatus.SUCCEEDED
    assert PaperOrder.objects.filter(client_order_id=trip.client_order_id).count() == 1  # one id, one order
    alert.refresh_from_db()
    assert "succeeded on attempt 3" in alert.message
    assert Job.objects.filter(name="breaker_action_retry").count() == 1


def test_stale_marks_never_act_and_raise_data_stale_once(trader, paper):
    live(dry_run=False)
    stop_loss()
    move(paper, 57000)
    Position.objects.filter(account=paper).update(mark_updated_at=timezone.now() - timedelta(seconds=11))
    evaluation_run(user_id=trader.pk)
    evaluation_run(user_id=trader.pk)
    assert not BreakerTrip.objects.exists()
    assert PaperPosition.objects.filter(account=paper).exists()
    stale = RiskAlert.objects.get(alert_type="data_stale")
    assert stale.severity == "critical" and "11s old" in stale.message

    Position.objects.filter(account=paper).update(mark_updated_at=timezone.now())
    evaluation_run(user_id=trader.pk)
    stale.refresh_from_db()
    assert stale.status == "resolved"
    assert BreakerTrip.objects.get().action_status == ActionStatus.SUCCEEDED


def test_a_failed_sync_makes_positions_stale(trader, paper):
    stop_loss()
    move(paper, 57000)
    type(paper).objects.filter(pk=paper.pk).update(last_sync_failed=True)
    evaluation_run(user_id=trader.pk)
    assert not BreakerTrip.objects.exists()
    assert "last sync failed" in RiskAlert.objects.get(alert_type="data_stale").message


def test_latch_releases_when_the_condition_clears_and_a_dry_run_recurrence_trips_again(trader, paper):
    """A dry-run trip is not an action: its cooldown never holds the next trip."""
    stop_loss(cooldown_seconds=300)
    move(paper, 57000)
    evaluation_run(user_id=trader.pk)
    move(paper, 60000)  # condition cleared
    evaluation_run(user_id=trader.pk)
    trip = BreakerTrip.objects.get()
    assert trip.released_at is not None and trip.release_reason == "condition cleared"
    move(paper, 57000)
    evaluation_run(user_id=trader.pk)
    assert BreakerTrip.objects.count() == 2  # armed again, trips again


def test_latch_holds_while_the_condition_holds_even_after_the_cooldown(trader, paper):
    stop_loss(cooldown_seconds=0)
    move(paper, 57000)
    for _ in range(3):
        evaluation_run(user_id=trader.pk)
    assert BreakerTrip.objects.count() == 1


def test_officer_rearm_lets_it_trip_again(trader, paper, officer):
    stop_loss()
    move(paper, 57000)
    evaluation_run(user_id=trader.pk)
    trip_rearm(actor=officer, trip=BreakerTrip.objects.get())
    evaluation_run(user_id=trader.pk)
    assert BreakerTrip.objects.count() == 2
    assert BreakerTrip.objects.filter(release_reason="rearmed", released_by=officer).count() == 1


def test_consecutive_losses_trip_once_per_streak(trader):
    acct = books.account(trader)
    books.position(acct, "BTCUSDT")
    CircuitBreakerFactory(name="losses", condition_type="consecutive_losses", threshold=3, action="cancel_all_orders")
    for minutes in (30, 20, 10):
        books.closed_trade(acct, "BTCUSDT", "-5", minutes_ago=minutes)
    evaluation_run(user_id=trader.pk)
    books.closed_trade(acct, "BTCUSDT", "-5", minutes_ago=5)  # the streak goes on: no second trip
    evaluation_run(user_id=trader.pk)
    assert BreakerTrip.objects.count() == 1
    trip = BreakerTrip.objects.get()
    assert trip.latch_key == f"streak:{acct.pk}:BTCUSDT" and trip.context["consecutive_losses"] == 4.0 - 1

    CircuitBreaker.objects.update(cooldown_seconds=0)
    config_cache_clear()  # what the services' change notification does
    books.closed_trade(acct, "BTCUSDT", "7", minutes_ago=4)  # a win re-arms
    evaluation_run(user_id=trader.pk)
    assert BreakerTrip.objects.get().released_at is not None
    for minutes in (3, 2, 1):
        books.closed_trade(acct, "BTCUSDT", "-1", minutes_ago=minutes)
    evaluation_run(user_id=trader.pk)
    assert BreakerTrip.objects.count() == 2


def test_officer_reset_of_a_streak_restarts_the_count(trader, officer):
    acct = books.account(trader)
    books.position(acct, "BTCUSDT")
    CircuitBreakerFactory(name="losses", condition_type="consecutive_losses", threshold=2, action="cancel_all_orders")
    for minutes in (30, 20):
        books.closed_trade(acct, "BTCUSDT", "-5", minutes_ago=minutes)
    evaluation_run(user_id=trader.pk)
    trip_rearm(actor=officer, trip=BreakerTrip.objects.get())
    evaluation_run(user_id=trader.pk)
    assert BreakerTrip.objects.count() == 1  # old losses no longer count
    trade = books.closed_trade(acct, "BTCUSDT", "-1", minutes_ago=0)
    evaluation_run(user_id=trader.pk)
    assert BreakerTrip.objects.count() == 1  # one new loss of two
    type(trade).objects.filter(pk=trade.pk).update(closed_at=timezone.now() + timedelta(seconds=1))
    books.closed_trade(acct, "BTCUSDT", "-1", minutes_ago=-0.1)
    evaluation_run(user_id=trader.pk)
    assert BreakerTrip.objects.count() == 2


def test_volatility_from_recorded_samples(trader):
    acct = books.account(trader)
    books.position(acct, "BTCUSDT", entry="100")
    CircuitBreakerFactory(
        name="vol",
        condition_type="volatility",
        threshold=D(10),
        action="cancel_all_orders",
        additional_params={"window_seconds": 60},
    )
    now = time.time()
    prices.price_samples_record([("paper", "BTCUSDT", D(100), now - 30), ("paper", "BTCUSDT", D(105), now - 20)])
    evaluation_run(user_id=trader.pk)
    assert not BreakerTrip.objects.exists()  # samples cover 30 s of 60: not evaluated yet
    prices.price_samples_record([("paper", "BTCUSDT", D(111), now - 55)])
    evaluation_run(user_id=trader.pk)
    trip = BreakerTrip.objects.get()
    assert trip.context["range_pct"] == 11.0 and trip.context["low"] == 100.0


def test_breaker_scope_by_symbol_and_exchange(trader):
    acct = books.account(trader, "binanceusdm")
    books.position(acct, "ETHUSDT", size="100", entry="100")
    CircuitBreakerFactory(name="btc-only", threshold=D(1), symbols=["BTCUSDT"])
    CircuitBreakerFactory(name="paper-only", threshold=D(1), exchanges=["paper"])
    CircuitBreakerFactory(name="eth-binance", threshold=D(1), symbols=["ETHUSDT"], exchanges=["binanceusdm"])
    CircuitBreakerFactory(name="disabled", threshold=D(1), enabled=False)
    evaluation_run(user_id=trader.pk)
    assert list(BreakerTrip.objects.values_list("breaker_name", flat=True)) == ["eth-binance"]


def test_position_event_evaluates_at_once(trader, paper, on_commit):
    stop_loss()
    on_commit()  # the account's setup
    paper_price_set(symbol="BTCUSDT", price=D(57000))
    account_sync(account=paper)
    assert not BreakerTrip.objects.exists()
    on_commit()  # sync committed: accounts tells the risk engine
    assert BreakerTrip.objects.get().breaker_name == "stop"


def test_evaluate_endpoint_reports_breakers(trader, paper, trader_client):
    stop_loss()
    CircuitBreakerFactory(name="calm", condition_type="max_position_size", threshold=D(10**9))
    move(paper, 57000)
    body = trader_client.post("/api/v1/risk/evaluate", {"symbol": "BTCUSDT"}, format="json").json()
    reports = {report["name"]: report for report in body["circuit_breakers"]}
    assert reports["calm"] == {"name": "calm", "triggered": False, "action": "close_position", "action_result": None}
    assert reports["stop"]["triggered"] and reports["stop"]["exchange"] == "paper"
    assert reports["stop"]["action_result"].startswith("Dry run")
    assert body["risk_level"] == "critical"
