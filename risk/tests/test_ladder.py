"""Issue 15 item 4: a limit's graded ladder fires each step once per crossing, latched
like breakers (SPEC §5's release rule), on paper with real orders, honouring dry run.

The book: the trader's paper account long 0.1 BTCUSDT, a total_exposure limit of 10,000
with steps at 80 % (alert), 100 % (set_reducing) and 120 % (flatten); the paper price
moves the exposure (0.1 x price) and a sync carries it to the position.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import PaperOrder, PaperPosition, Position
from accounts.services.paper import paper_order_execute, paper_price_set
from accounts.services.sync import account_sync
from risk.constants import ActionStatus, AlertStatus, AlertType
from risk.models import LadderTrip, RiskAlert
from risk.services.config import global_config_update
from risk.services.evaluation import evaluation_run
from risk.services.limits import limit_create
from risk.services.trading_state import trading_state_effective

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_caps", "no_breakers")]

D = Decimal
LADDER = [{"at_pct": "80", "do": "alert"}, {"at_pct": "100", "do": "set_reducing"}, {"at_pct": "120", "do": "flatten"}]


@pytest.fixture
def exposed(trader, make_exchange_account):
    """The trader's paper account, long 0.1 BTCUSDT bought at 70,000."""
    account = make_exchange_account(trader, "paper")
    paper_price_set(symbol="BTCUSDT", price=D(70000))
    paper_order_execute(account_id=account.pk, symbol="BTCUSDT", side="buy", amount=D("0.1"))
    account_sync(account=account)
    return account


@pytest.fixture
def laddered(trader):
    return limit_create(
        actor=trader, limit_type="total_exposure", threshold_value=D(10000), ladder=LADDER, warning_value=None
    )


def price(account, value) -> None:
    """Move the paper price and sync the account (its position's mark and exposure)."""
    paper_price_set(symbol="BTCUSDT", price=D(value))
    account_sync(account=account)


def step_alerts():
    return RiskAlert.objects.filter(alert_type=AlertType.LADDER_STEP)


def live(officer) -> None:
    global_config_update(actor=officer, dry_run=False, alert_cooldown_seconds=300)


def test_ladder_80_100_120_each_step_acts_once_per_crossing_then_releases_and_re_acts_after_cooldown(
    trader, officer, exposed, laddered
):
    live(officer)
    price(exposed, 79000)  # 79 %: nothing
    evaluation_run(user_id=trader.pk)
    assert not LadderTrip.objects.exists() and not step_alerts().exists()

    price(exposed, 85000)  # 85 %: the alert step, once
    assert [trip.action for trip in evaluation_run(user_id=trader.pk).ladder_trips] == ["alert"]
    assert evaluation_run(user_id=trader.pk).ladder_trips == []  # a second evaluation raises nothing new
    alert_step = LadderTrip.objects.get()
    assert (alert_step.at_pct, alert_step.action, alert_step.action_status) == (80, "alert", ActionStatus.SUCCEEDED)
    [alert] = step_alerts()
    assert alert.severity == "high" and "80% of its threshold" in alert.message and alert.limit_id == laddered.pk

    price(exposed, 105000)  # 105 %: set_reducing, once
    evaluation_run(user_id=trader.pk)
    evaluation_run(user_id=trader.pk)
    reducing = LadderTrip.objects.get(at_pct=100)
    assert reducing.action_status == ActionStatus.SUCCEEDED and LadderTrip.objects.count() == 2
    assert trading_state_effective(user_id=trader.pk).state == "reducing"
    assert step_alerts().count() == 2

    price(exposed, 125000)  # 125 %: flatten, once, reduce-only on paper
    evaluation_run(user_id=trader.pk)
    flatten = LadderTrip.objects.get(at_pct=120)
    assert flatten.action_status == ActionStatus.SUCCEEDED, flatten.action_result
    assert not flatten.dry_run and flatten.action_result.startswith("Positions closed")
    close = PaperOrder.objects.get(client_order_id__startswith=flatten.client_order_id)
    assert close.reduce_only and close.side == "sell" and close.amount == D("0.1")
    assert not PaperPosition.objects.filter(account=exposed).exists()
    assert not Position.objects.filter(account=exposed, closed_at__isnull=True).exists()

    # Flat, so back under 80 %: every step releases (its alert resolves with it).
    evaluation_run(user_id=trader.pk)
    assert not LadderTrip.objects.filter(released_at__isnull=True).exists()
    assert set(LadderTrip.objects.values_list("release_reason", flat=True)) == {"condition cleared"}
    assert not step_alerts().exclude(status=AlertStatus.RESOLVED).exists()
    assert LadderTrip.objects.count() == 3

    # Re-crossing 80 % inside the cooldown is held; after it the step acts again.
    paper_order_execute(account_id=exposed.pk, symbol="BTCUSDT", side="buy", amount=D("0.1"))
    price(exposed, 85000)
    evaluation_run(user_id=trader.pk)
    assert LadderTrip.objects.count() == 3
    evaluation_run(user_id=trader.pk, now=timezone.now() + timedelta(seconds=301))
    again = LadderTrip.objects.filter(at_pct=80, released_at__isnull=True).get()
    assert again.pk != alert_step.pk and again.action_status == ActionStatus.SUCCEEDED
    assert step_alerts().exclude(status=AlertStatus.RESOLVED).count() == 1


def test_ladder_under_dry_run_records_each_step_without_acting(trader, exposed, laddered):
    price(exposed, 125000)  # every step at once, dry run on (the default)
    evaluation_run(user_id=trader.pk)
    trips = {trip.action: trip for trip in LadderTrip.objects.all()}
    assert set(trips) == {"alert", "set_reducing", "flatten"}
    assert all(trip.dry_run and trip.action_status == ActionStatus.DRY_RUN for trip in trips.values())
    assert "would close the long 0.1 BTCUSDT position on paper" in trips["flatten"].action_result
    assert "nothing was sent" in trips["set_reducing"].action_result
    assert PaperPosition.objects.filter(account=exposed).exists()
    assert not PaperOrder.objects.filter(reduce_only=True).exists()
    assert trading_state_effective(user_id=trader.pk).state == "active"
    assert step_alerts().count() == 3
    evaluation_run(user_id=trader.pk)
    assert LadderTrip.objects.count() == 3  # latched: nothing new


def test_a_ladder_steps_release_when_the_limit_is_disabled(trader, exposed, laddered):
    from risk.services.limits import limit_update

    price(exposed, 85000)
    evaluation_run(user_id=trader.pk)
    assert LadderTrip.objects.filter(released_at__isnull=True).count() == 1
    limit_update(actor=trader, limit=laddered, changes={"enabled": False})
    evaluation_run(user_id=trader.pk)
    assert LadderTrip.objects.get().release_reason == "step no longer applies"


def test_a_dry_run_step_never_blocks_the_live_one_once_dry_run_is_switched_off(trader, officer, exposed, laddered):
    price(exposed, 125000)
    evaluation_run(user_id=trader.pk)
    assert LadderTrip.objects.filter(dry_run=True, released_at__isnull=True).count() == 3
    live(officer)
    assert set(LadderTrip.objects.values_list("release_reason", flat=True)) == {"dry run switched off"}
    assert LadderTrip.objects.filter(released_by=officer).count() == 3
    evaluation_run(user_id=trader.pk)
    flatten = LadderTrip.objects.get(dry_run=False, action="flatten")
    assert flatten.action_status == ActionStatus.SUCCEEDED, flatten.action_result
    assert not PaperPosition.objects.filter(account=exposed).exists()


def test_the_feeds_index_fires_the_same_steps_once_per_crossing(trader, officer, exposed, laddered):
    """The feed's path (RiskIndex, the same outcome_decide / outcome_apply): ticks in
    steps under the mark-jump guard, 79 % -> 85 % -> 125 %."""
    from risk.services.index import RiskIndex

    live(officer)
    price(exposed, 78000)
    index = RiskIndex().load()

    def tick(value: int) -> None:
        paper_price_set(symbol="BTCUSDT", price=D(value))
        index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D(value)})

    tick(79000)
    assert not LadderTrip.objects.exists()
    tick(82000)
    tick(85000)
    tick(85500)
    assert list(LadderTrip.objects.values_list("action", flat=True)) == ["alert"]
    assert step_alerts().count() == 1
    for value in (91000, 97000, 103000, 106000):
        tick(value)
    assert LadderTrip.objects.filter(action="set_reducing", action_status=ActionStatus.SUCCEEDED).count() == 1
    for value in (112000, 118000, 121000):
        tick(value)
    flatten = LadderTrip.objects.get(action="flatten")
    assert flatten.action_status == ActionStatus.SUCCEEDED, flatten.action_result
    assert PaperOrder.objects.get(client_order_id__startswith=flatten.client_order_id).reduce_only
    assert not PaperPosition.objects.filter(account=exposed).exists()
    assert LadderTrip.objects.count() == 3


def test_the_limits_api_marks_the_latched_steps(trader, trader_client, exposed, laddered):
    price(exposed, 105000)
    evaluation_run(user_id=trader.pk)
    [item] = trader_client.get("/api/v1/risk/limits").json()["limits"]
    latched = {step["at_pct"]: step["latched"] for step in item["ladder"]}
    assert [len(latched[pct]) for pct in ("80", "100", "120")] == [1, 1, 0]
    assert latched["100"][0]["symbol"] is None and latched["100"][0]["action_status"] == "dry_run"
    detail = trader_client.get(f"/api/v1/risk/limits/{laddered.pk}").json()
    assert detail["ladder"] == item["ladder"]


# --- the admin ----------------------------------------------------------------------------
def _admin_form(limit, **fields) -> dict:
    return {
        "symbol": limit.symbol or "",
        "limit_type": limit.limit_type,
        "threshold_value": str(limit.threshold_value),
        "warning_value": "",
        "enabled": "on",
        **fields,
    }


def test_the_admin_limit_form_shows_the_steps_and_which_are_latched_and_validates_the_ladder(
    client, officer, trader, exposed, laddered
):
    from django.urls import reverse

    price(exposed, 85000)
    evaluation_run(user_id=trader.pk)
    client.force_login(officer)
    url = reverse("admin:risk_risklimit_change", args=[laddered.pk])
    page = client.get(url).content.decode()
    assert "80 %: alert \u2014 latched on the book since" in page and "(dry_run, dry run)" in page
    assert "100 %: set_reducing \u2014 armed" in page and "120 %: flatten \u2014 armed" in page
    trips = client.get(reverse("admin:risk_laddertrip_changelist") + f"?limit__id__exact={laddered.pk}")
    assert f"?limit__id__exact={laddered.pk}" in page and trips.status_code == 200
    assert 'class="field-at_pct">80<' in trips.content.decode()  # as written (issue 13), not 80.0000

    bad = client.post(
        url, _admin_form(laddered, ladder='[{"at_pct": 90, "do": "alert"}, {"at_pct": 50, "do": "flatten"}]')
    )
    assert bad.status_code == 200 and "steps go up" in bad.content.decode()
    good = client.post(url, _admin_form(laddered, ladder='[{"at_pct": 90, "do": "halt_trading"}]'))
    assert good.status_code == 302, good.content[:3000]
    laddered.refresh_from_db()
    assert laddered.ladder == [{"at_pct": "90", "do": "halt_trading"}]


# --- failures: loud, retried with the same client order ids, recovered by the sweep --------
def test_a_failed_flatten_is_escalated_and_retried_on_the_critical_queue_with_the_same_order_ids(
    trader, officer, exposed, laddered
):
    from jobs.models import Job
    from risk.services.trip_actions import trip_action_retry

    live(officer)
    price(exposed, 125000)
    PaperPosition.objects.filter(account=exposed).delete()  # the venue no longer holds it: reduce-only is refused
    evaluation_run(user_id=trader.pk)
    flatten = LadderTrip.objects.get(action="flatten")
    assert flatten.action_status == ActionStatus.FAILED and "ReduceOnly" in flatten.action_error
    alert = flatten.alert
    assert alert.severity == "critical" and alert.metadata["escalated"] and "Action FAILED" in alert.message
    job = Job.objects.get(name="ladder_action_retry")
    assert job.priority == "critical" and job.args == {"trip_id": str(flatten.pk)}

    with pytest.raises(RuntimeError):  # still failing: the job machinery retries, then dead-letters
        trip_action_retry(trip_id=flatten.pk, model=LadderTrip)
    paper_order_execute(account_id=exposed.pk, symbol="BTCUSDT", side="buy", amount=D("0.1"))
    assert trip_action_retry(trip_id=flatten.pk, model=LadderTrip)["status"] == "succeeded"
    flatten.refresh_from_db()
    assert flatten.action_attempts == 3 and flatten.action_status == ActionStatus.SUCCEEDED
    position_id = Position.objects.get(account=exposed, symbol="BTCUSDT").pk
    assert PaperOrder.objects.filter(client_order_id=f"{flatten.client_order_id}-{position_id}").count() == 1
    assert not PaperPosition.objects.filter(account=exposed).exists()
    assert Job.objects.filter(name="ladder_action_retry").count() == 1


def test_a_step_latched_by_a_process_that_died_before_acting_is_acted_on_by_the_sweep(
    trader, officer, exposed, laddered
):
    from risk.services.assess_limits import LimitStatus
    from risk.services.ladder import step_latch
    from risk.services.outcome import StepHit, ladder_key
    from risk.services.sweep import evaluation_sweep
    from risk.services.trips import STUCK_AFTER_SECONDS

    live(officer)
    price(exposed, 125000)
    status = LimitStatus(
        key=f"limit:{laddered.pk}:*",
        source="limit",
        limit_id=laddered.pk,
        limit_type="total_exposure",
        symbol=None,
        value=D(12500),
        threshold=D(10000),
        ladder=((D(120), "flatten"),),
    )
    step = StepHit(key=ladder_key(status, D(120)), status=status, at_pct=D(120), action="flatten")
    at = timezone.now() - timedelta(seconds=STUCK_AFTER_SECONDS + 5)
    latched = step_latch(step=step, user_id=trader.pk, dry_run=False, now=at)  # ... and the process died
    assert latched.action_status == ActionStatus.PENDING

    swept = evaluation_sweep(user_id=trader.pk)
    assert swept["recovered_trips"] == 1 and swept["new_ladder_steps"] == 0
    latched.refresh_from_db()
    assert latched.action_status == ActionStatus.SUCCEEDED, latched.action_result
    assert not PaperPosition.objects.filter(account=exposed).exists()
    assert LadderTrip.objects.filter(action="flatten").count() == 1  # the sweep's evaluation found it latched


def test_a_position_size_ladder_cancels_that_symbols_orders_then_halts_the_owner(trader, officer, exposed):
    """A symbol's limit acts in its scope only: 90 % cancels the resting BTCUSDT order
    (the ETHUSDT one stays), 110 % halts the owner's trading."""
    live(officer)
    ladder = [{"at_pct": "90", "do": "cancel_orders"}, {"at_pct": "110", "do": "halt_trading"}]
    limit_create(actor=trader, limit_type="position_size", symbol="BTCUSDT", threshold_value=D(10000), ladder=ladder)
    paper_order_execute(account_id=exposed.pk, symbol="BTCUSDT", side="buy", amount=D("0.1"), type="limit", price=D(1))
    paper_order_execute(account_id=exposed.pk, symbol="ETHUSDT", side="buy", amount=D("1"), type="limit", price=D(1))

    price(exposed, 95000)
    evaluation_run(user_id=trader.pk)
    cancel = LadderTrip.objects.get()
    assert cancel.symbol == "BTCUSDT" and cancel.action_status == ActionStatus.SUCCEEDED, cancel.action_result
    assert cancel.action_result == "Cancelled open orders: 1 on paper:BTCUSDT"
    assert set(PaperOrder.objects.filter(type="limit").values_list("symbol", "status")) == {
        ("BTCUSDT", "canceled"),
        ("ETHUSDT", "open"),
    }
    assert trading_state_effective(user_id=trader.pk).state == "active"

    price(exposed, 111000)
    evaluation_run(user_id=trader.pk)
    halt = LadderTrip.objects.get(action="halt_trading")
    assert halt.action_status == ActionStatus.SUCCEEDED and halt.alert.severity == "critical"
    effective = trading_state_effective(user_id=trader.pk)
    assert effective.state == "halted" and "110% of the position_size limit on BTCUSDT" in effective.reason
