"""Latch, release and re-act over time (SPEC §5, issue 9 B1, B4, B7): a latch releases
when an evaluation finds the condition clear; the cooldown counts from the last live
action; a dry-run trip never blocks the live action; a trip latched but never acted on
is acted on by the sweep; `critical` follows the trip, not its alert."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import PaperOrder, PaperPosition, Position
from accounts.services.paper import paper_order_execute, paper_price_set
from accounts.services.sync import account_sync
from risk.constants import ActionStatus
from risk.models import BreakerTrip, GlobalConfig, RiskAlert
from risk.services import prices
from risk.services.assess import BreakerHit
from risk.services.breakers import breaker_set_enabled, breaker_update
from risk.services.config import global_config_update
from risk.services.evaluation import evaluation_run
from risk.services.snapshots import book_load, config_view_get
from risk.services.sweep import evaluation_sweep
from risk.services.trips import STUCK_AFTER_SECONDS, trip_latch
from risk.tests import books
from risk.tests.factories import CircuitBreakerFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_caps")]

D = Decimal


def live(officer) -> None:
    global_config_update(actor=officer, dry_run=False)


def long_lived_marks() -> None:
    """Marks of hand-built books never go stale in these time-travelling tests."""
    GlobalConfig.objects.update(max_price_age_seconds=86400)


def three_losses():
    """The default `three-losses` breaker (risk.bootstrap)."""
    return CircuitBreakerFactory(
        name="three-losses",
        condition_type="consecutive_losses",
        threshold=3,
        action="cancel_all_orders",
        cooldown_seconds=300,
    )


def test_three_losses_a_win_then_three_more_losses_acts_again_after_the_cooldown(trader, officer):
    """B1(a): third loss trips at T; a win at T+60 s releases the latch; three more
    losses by T+240 s trip again once 300 s have passed since the action at T."""
    long_lived_marks()
    live(officer)
    acct = books.account(trader, "paper")
    books.position(acct, "BTCUSDT")
    three_losses()
    t0 = timezone.now()
    for minutes in (30, 20, 10):
        books.closed_trade(acct, "BTCUSDT", "-5", minutes_ago=minutes)
    evaluation_run(user_id=trader.pk, now=t0)
    first = BreakerTrip.objects.get()
    assert first.action_status == ActionStatus.SUCCEEDED and not first.dry_run

    books.closed_trade(acct, "BTCUSDT", "7", minutes_ago=-1)  # a win at T+60 s
    evaluation_run(user_id=trader.pk, now=t0 + timedelta(seconds=60))
    first.refresh_from_db()
    assert first.released_at is not None and first.condition_cleared_at is not None
    assert first.release_reason == "condition cleared"

    for seconds in (120, 180, 240):  # three more losses by T+240 s
        books.closed_trade(acct, "BTCUSDT", "-2", minutes_ago=-seconds / 60)
    result = evaluation_run(user_id=trader.pk, now=t0 + timedelta(seconds=241))
    assert BreakerTrip.objects.count() == 1  # the cooldown (from the action at T) holds it
    (held,) = [report for report in result.breakers if report.triggered]
    assert held.action_status == "cooldown"

    evaluation_run(user_id=trader.pk, now=t0 + timedelta(seconds=300))
    assert BreakerTrip.objects.count() == 2
    second = BreakerTrip.objects.exclude(pk=first.pk).get()
    assert second.released_at is None and second.action_status == ActionStatus.SUCCEEDED


def test_volatility_spike_calm_then_a_lasting_spike_acts_again(trader, officer):
    """B1(b): spike (trip), calm at +2 min (released), new lasting spike at +4 min:
    acts again once the cooldown since the first action has passed."""
    long_lived_marks()
    live(officer)
    acct = books.account(trader, "paper")
    books.position(acct, "BTCUSDT", size="0.01", entry="100", mark="100")
    CircuitBreakerFactory(
        name="vol",
        condition_type="volatility",
        threshold=5,
        action="cancel_all_orders",
        cooldown_seconds=300,
        additional_params={"window_seconds": 60},
    )
    t0 = timezone.now()

    def tick(seconds: float, price: str) -> None:
        at = (t0 + timedelta(seconds=seconds)).timestamp()
        prices.price_samples_record([("paper", "BTCUSDT", D(price), at)])

    for second, price in ((-55, "100"), (-30, "100"), (0, "110")):  # spike: 10 % over the last minute
        tick(second, price)
    evaluation_run(user_id=trader.pk, now=t0)
    first = BreakerTrip.objects.get()
    for second in (60, 90, 120):  # calm for a whole window by +2 min
        tick(second, "110")
    evaluation_run(user_id=trader.pk, now=t0 + timedelta(seconds=120))
    first.refresh_from_db()
    assert first.released_at is not None
    for second, price in ((180, "110"), (210, "110"), (240, "121")):  # a new spike at +4 min, lasting
        tick(second, price)
    evaluation_run(user_id=trader.pk, now=t0 + timedelta(seconds=240))
    assert BreakerTrip.objects.count() == 1  # within 300 s of the first action
    tick(250, "110")
    tick(300, "121")
    evaluation_run(user_id=trader.pk, now=t0 + timedelta(seconds=301))
    assert BreakerTrip.objects.count() == 2


@pytest.fixture
def losing_paper(trader, make_exchange_account):
    """The trader's paper account, long 0.5 BTCUSDT from 60,000, synced at 57,000."""
    account = make_exchange_account(trader, "paper")
    paper_price_set(symbol="BTCUSDT", price=D(60000))
    paper_order_execute(account_id=account.pk, symbol="BTCUSDT", side="buy", amount=D("0.5"))
    paper_price_set(symbol="BTCUSDT", price=D(57000))
    account_sync(account=account)
    return account


def stop_loss(**fields):
    defaults = {"name": "stop", "condition_type": "pnl", "threshold": D(1000), "action": "close_position"}
    return CircuitBreakerFactory(**{**defaults, **fields})


def test_dry_run_trip_then_dry_run_off_closes_the_position(trader, officer, losing_paper):
    """B1(c): a stop-loss trips under dry run; switching dry run off releases that latch
    (audited on the trip), so the next evaluation closes the position for real."""
    stop_loss()
    evaluation_run(user_id=trader.pk)
    dry = BreakerTrip.objects.get()
    assert dry.dry_run and dry.action_status == ActionStatus.DRY_RUN
    assert PaperPosition.objects.filter(account=losing_paper).exists()

    live(officer)
    dry.refresh_from_db()
    assert dry.released_at is not None and dry.release_reason == "dry run switched off"
    assert dry.released_by == officer
    evaluation_run(user_id=trader.pk)
    real = BreakerTrip.objects.exclude(pk=dry.pk).get()
    assert not real.dry_run and real.action_status == ActionStatus.SUCCEEDED, real.action_result
    assert not PaperPosition.objects.filter(account=losing_paper).exists()


def test_dry_run_trip_then_breaker_disabled_and_enabled_again_under_live_acts(trader, officer, losing_paper):
    """B1(c): dry-run trip; dry run off meanwhile with the breaker disabled; enabling it
    again releases its dry-run latch and the live close follows."""
    breaker = stop_loss()
    evaluation_run(user_id=trader.pk)
    dry = BreakerTrip.objects.get()
    breaker_set_enabled(actor=officer, breaker=breaker, enabled=False)
    GlobalConfig.objects.update(dry_run=False)  # switched off by hand, no release for the disabled breaker
    dry.refresh_from_db()
    assert dry.released_at is None
    breaker_update(actor=officer, breaker=breaker, enabled=True)
    dry.refresh_from_db()
    assert dry.release_reason == "breaker enabled again" and dry.released_by == officer
    evaluation_run(user_id=trader.pk)
    assert BreakerTrip.objects.filter(dry_run=False, action_status=ActionStatus.SUCCEEDED).count() == 1


def test_live_latch_clears_at_once_and_recurrence_waits_for_the_cooldown(trader, officer):
    long_lived_marks()
    live(officer)
    acct = books.account(trader, "paper")
    position = books.position(acct, "BTCUSDT", size="1", entry="100", mark="80")
    stop_loss(threshold=D(10), action="cancel_all_orders", cooldown_seconds=300)
    t0 = timezone.now()
    evaluation_run(user_id=trader.pk, now=t0)
    Position.objects.filter(pk=position.pk).update(mark_price=D(100), unrealized_pnl=D(0), notional=D(100))
    evaluation_run(user_id=trader.pk, now=t0 + timedelta(seconds=10))
    first = BreakerTrip.objects.get()
    assert first.released_at == t0 + timedelta(seconds=10) == first.condition_cleared_at
    Position.objects.filter(pk=position.pk).update(mark_price=D(80), unrealized_pnl=D(-20), notional=D(80))
    evaluation_run(user_id=trader.pk, now=t0 + timedelta(seconds=299))
    assert BreakerTrip.objects.count() == 1
    evaluation_run(user_id=trader.pk, now=t0 + timedelta(seconds=300))
    assert BreakerTrip.objects.count() == 2


def test_trip_latched_but_never_acted_on_is_acted_on_by_the_sweep(trader, officer, losing_paper):
    """B4: the process died between the latch (committed) and the action: the sweep
    finds the pending trip and closes the position with the same client order id."""
    live(officer)
    breaker = stop_loss()
    config = config_view_get()
    book = book_load(user_id=trader.pk)
    (position,) = book.positions
    (view,) = config.breakers
    hit = BreakerHit(breaker=view, position=position, latch_key=f"position:{position.id}", context={}, summary="x")
    trip = trip_latch(hit=hit, dry_run=False, now=timezone.now())  # ... and the process dies here
    assert trip.action_status == ActionStatus.PENDING and breaker.pk == trip.breaker_id

    evaluation_sweep()
    trip.refresh_from_db()
    assert trip.action_status == ActionStatus.PENDING  # not stuck for long enough yet: its process may be alive
    BreakerTrip.objects.filter(pk=trip.pk).update(triggered_at=timezone.now() - timedelta(seconds=STUCK_AFTER_SECONDS))
    summary = evaluation_sweep()
    trip.refresh_from_db()
    assert summary["recovered_trips"] == 1
    assert trip.action_status == ActionStatus.SUCCEEDED, trip.action_result
    order = PaperOrder.objects.get(client_order_id=trip.client_order_id)
    assert order.reduce_only and order.filled == D("0.5")
    assert BreakerTrip.objects.count() == 1  # the same trip acted; no second one


def test_a_trip_whose_action_lease_is_held_is_left_alone(trader, officer, losing_paper):
    """B4: a trip whose action runs in another process (its lease is live) is not run twice."""
    live(officer)
    stop_loss()
    config = config_view_get()
    (position,) = book_load(user_id=trader.pk).positions
    hit = BreakerHit(
        breaker=config.breakers[0], position=position, latch_key=f"position:{position.id}", context={}, summary="x"
    )
    trip = trip_latch(hit=hit, dry_run=False, now=timezone.now() - timedelta(seconds=STUCK_AFTER_SECONDS + 1))
    BreakerTrip.objects.filter(pk=trip.pk).update(action_lease_until=timezone.now() + timedelta(seconds=60))
    assert evaluation_sweep()["recovered_trips"] == 0
    trip.refresh_from_db()
    assert trip.action_status == ActionStatus.PENDING and not PaperOrder.objects.filter(reduce_only=True).exists()


def test_critical_follows_the_trip_not_the_alert(trader, officer, losing_paper, api_client_for):
    """B7: a trader cannot resolve the alert of a trip that has not succeeded (a dry
    run sent nothing); an officer can, and the user stays critical while the trip is
    latched and exposed; once the position is closed and the latch released, the user
    is no longer critical though nobody resolved anything."""
    stop_loss()
    assert evaluation_run(user_id=trader.pk).risk_level == "critical"
    alert = RiskAlert.objects.get(alert_type="circuit_breaker")
    response = api_client_for(trader).post(f"/api/v1/risk/alerts/{alert.pk}/resolve")
    assert response.status_code == 403, response.content
    assert "only a risk officer" in response.json()["message"]
    assert api_client_for(officer).post(f"/api/v1/risk/alerts/{alert.pk}/resolve").status_code == 200
    assert evaluation_run(user_id=trader.pk).risk_level == "critical"  # still exposed: dry run sent nothing

    paper_order_execute(account_id=losing_paper.pk, symbol="BTCUSDT", side="sell", amount=D("0.5"))
    account_sync(account=losing_paper)
    result = evaluation_run(user_id=trader.pk)
    assert BreakerTrip.objects.get().release_reason == "position closed"
    assert result.risk_level != "critical"


def test_a_succeeded_trip_does_not_keep_its_user_critical(trader, officer, losing_paper):
    """B7: the action closed the position: the unresolved alert does not make the user
    critical."""
    live(officer)
    stop_loss()
    result = evaluation_run(user_id=trader.pk)
    assert BreakerTrip.objects.get().action_status == ActionStatus.SUCCEEDED
    assert result.risk_level != "critical"
    assert RiskAlert.objects.filter(alert_type="circuit_breaker", status="triggered").exists()


def test_a_losing_streak_on_a_hedged_symbol_closes_both_legs(trader, officer, paper_account):
    """B10: consecutive_losses latches on (account, symbol) and its close acts on each
    leg the account holds there, each with its own client order id."""
    from accounts.models import PaperWallet

    long_lived_marks()
    live(officer)
    PaperWallet.objects.filter(account=paper_account).update(hedge_mode=True)
    paper_price_set(symbol="BTCUSDT", price=D(60000))
    paper_order_execute(account_id=paper_account.pk, symbol="BTCUSDT", side="buy", amount=D(2), position_side="long")
    paper_order_execute(account_id=paper_account.pk, symbol="BTCUSDT", side="sell", amount=D(1), position_side="short")
    account_sync(account=paper_account)
    for minutes in (30, 20):
        books.closed_trade(paper_account, "BTCUSDT", "-5", minutes_ago=minutes)
    CircuitBreakerFactory(name="two-losses", condition_type="consecutive_losses", threshold=2, action="close_position")
    evaluation_run(user_id=trader.pk)
    trip = BreakerTrip.objects.get()
    assert trip.action_status == ActionStatus.SUCCEEDED, trip.action_result
    assert not PaperPosition.objects.filter(account=paper_account).exists()
    ids = set(
        PaperOrder.objects.filter(account=paper_account, reduce_only=True).values_list("client_order_id", flat=True)
    )
    assert ids == {f"{trip.client_order_id}-l", f"{trip.client_order_id}-s"}


@pytest.mark.django_db(transaction=True)
def test_a_process_killed_between_latch_and_action_leaves_a_trip_the_sweep_acts_on(
    trader, officer, losing_paper, worker_database_url
):
    """B4 with a real kill: a separate process latches the stop-loss trip (committed), then
    is killed with SIGKILL before its action runs; the sweep closes the position with
    the trip's client order id."""
    import os
    import subprocess
    import sys

    from conftest import ROOT

    live(officer)
    stop_loss()
    script = (
        "import os, signal\n"
        "from django.utils import timezone\n"
        "from risk.services.assess import BreakerHit\n"
        "from risk.services.snapshots import book_load, config_view_get\n"
        "from risk.services.trips import trip_latch\n"
        f"(position,) = book_load(user_id='{trader.pk}').positions\n"
        "(breaker,) = config_view_get(fresh=True).breakers\n"
        "hit = BreakerHit(breaker=breaker, position=position, latch_key=f'position:{position.id}', context={}, "
        "summary='stop')\n"
        "trip_latch(hit=hit, dry_run=False, now=timezone.now())\n"
        "os.kill(os.getpid(), signal.SIGKILL)  # dies before the action runs\n"
    )
    env = dict(os.environ, DATABASE_URL=worker_database_url)
    died = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, capture_output=True, timeout=120
    )
    assert died.returncode == -9, died.stderr.decode()[-2000:]
    trip = BreakerTrip.objects.get()
    assert trip.action_status == ActionStatus.PENDING and trip.action_attempts == 0
    assert PaperPosition.objects.filter(account=losing_paper).exists()

    BreakerTrip.objects.filter(pk=trip.pk).update(triggered_at=timezone.now() - timedelta(seconds=STUCK_AFTER_SECONDS))
    assert evaluation_sweep()["recovered_trips"] == 1
    trip.refresh_from_db()
    assert trip.action_status == ActionStatus.SUCCEEDED, trip.action_result
    assert PaperOrder.objects.get(client_order_id=trip.client_order_id).filled == D("0.5")
    assert not PaperPosition.objects.filter(account=losing_paper).exists()
