"""`POST /risk/evaluate` cheap enough for a request (issue 14): a 100 x 50 book with the
default breakers and desk caps in at most three queries, its reads
(risk.services.request_loads) equal to the loaders the index and the sweep use, and
what time alone changes (staleness, time_based, the alert and breaker cooldowns, the
UTC midnight rollover) re-checked on every call although the compiled SQL, and with
unchanged rows the parsed views and statuses, are reused."""

import uuid
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import AccountDay, Position
from etrms import text_rows
from risk.models import (
    AlertStatus,
    BreakerTrip,
    CircuitBreaker,
    ExchangeConfig,
    GlobalConfig,
    LadderTrip,
    SymbolConfig,
)
from risk.services import request_loads
from risk.services.breaker_inputs import streak_inputs_load
from risk.services.evaluation import evaluation_run
from risk.services.open_state import open_states_load
from risk.services.snapshots import book_load, config_cache_clear, config_view_get, desk_totals_load, limits_load
from risk.services.trips import trip_rearm
from risk.tests import books
from risk.tests.factories import CircuitBreakerFactory, RiskAlertFactory, RiskLimitFactory, breaker_trip

pytestmark = pytest.mark.django_db
D = Decimal
URL = "/api/v1/risk/evaluate"


@pytest.fixture
def default_breakers(db):
    from risk.bootstrap import default_breakers_ensure

    default_breakers_ensure()
    config_cache_clear()


def _book_100_by_50(user):
    accounts = [books.account(user, exchange) for exchange in ("paper", "binance", "bybit", "okx", "binanceusdm")]
    for index in range(100):
        slot = index // 5  # 20 per account: 10 symbols, both sides (hedged)
        books.position(accounts[index % 5], f"S{slot // 2}USDT", "long" if slot % 2 else "short", size="0.5")
    for index in range(45):
        RiskLimitFactory(user=user, symbol=f"S{index}USDT", threshold_value=D("1e9"), warning_value=D("8e8"))
    for kind in ("total_exposure", "daily_loss", "margin_ratio", "leverage", "drawdown"):
        RiskLimitFactory(user=user, symbol=None, limit_type=kind, threshold_value=D("1e6"), warning_value=None)


def test_evaluate_100_positions_50_limits_in_at_most_three_queries(
    trader, trader_client, default_breakers, django_assert_max_num_queries
):
    _book_100_by_50(trader)
    assert trader_client.post(URL, {}, format="json").status_code == 200  # alerts, samples and config settle
    with django_assert_max_num_queries(3):
        response = trader_client.post(URL, {}, format="json")
    assert response.status_code == 200
    assert len(response.json()["circuit_breakers"]) == CircuitBreaker.objects.filter(enabled=True).count()


def test_evaluation_of_100_positions_50_limits_makes_one_redis_round_trip(
    trader, default_breakers, monkeypatch, django_assert_max_num_queries
):
    """The configuration's version check and the volatility ranges share one pipeline
    (the steady state: marks already recorded, no market that could trip)."""
    from redis.connection import AbstractConnection

    _book_100_by_50(trader)
    evaluation_run(user_id=trader.pk)  # samples recorded, configuration cached
    sent = []
    send = AbstractConnection.send_packed_command
    monkeypatch.setattr(
        AbstractConnection,
        "send_packed_command",
        lambda self, *args, **kwargs: sent.append(1) or send(self, *args, **kwargs),
    )
    with django_assert_max_num_queries(2):
        result = evaluation_run(user_id=trader.pk)
    assert len(sent) == 1
    assert result.breakers_evaluated and len(result.statuses) >= 50


def _mixed_desk(trader, make_user):
    """Accounts with and without a balance, hedged positions, a symbol and an exchange
    cap, another user's book, closed-trade streaks, limits with drawdown peaks, open,
    cooling and old alerts, latched, live and re-armed trips, a limit's ladder with a
    latched step, one acted live within the alert cooldown and one before it."""
    SymbolConfig.objects.create(symbol="BTCUSDT", max_position_size=D("1000000"))
    ExchangeConfig.objects.create(exchange="binance", max_exposure=D("5000000"))
    paper = books.account(trader, day_realized="-12.5", day_start_unrealized="3")
    binance = books.account(trader, "binance", maintenance_margin="40")
    books.account(trader, "bybit", with_balance=False)
    books.position(paper, "BTCUSDT", "long", size="2", entry="100", mark="90")
    books.position(paper, "BTCUSDT", "short", size="1", entry="100", mark="95", leverage="3")
    books.position(binance, "ETHUSDT", "long", size="3", entry="10", mark="12", realized="4")
    other = books.account(make_user(), "binance", balance="5000")
    books.position(other, "BTCUSDT", "short", size="7", entry="100", mark="101")
    for minutes, pnl in ((30, "-1"), (20, "-2"), (10, "3"), (5, "-4")):
        books.closed_trade(paper, "BTCUSDT", pnl, minutes_ago=minutes)
    RiskLimitFactory(user=trader, symbol="BTCUSDT", threshold_value=D("500"), warning_value=D("400"))
    RiskLimitFactory(user=trader, symbol=None, limit_type="drawdown", threshold_value=D("10"), warning_value=None)
    trader.risk_limits.filter(limit_type="drawdown").update(equity_peaks={str(paper.id): "100500"})
    now = timezone.now()
    RiskAlertFactory(user=trader, dedup_key="open:1")
    RiskAlertFactory(
        user=trader, dedup_key="cool:1", status=AlertStatus.RESOLVED, resolved_at=now - timedelta(seconds=5)
    )
    RiskAlertFactory(user=trader, dedup_key="old:1", status=AlertStatus.RESOLVED, resolved_at=now - timedelta(days=2))
    streak = CircuitBreaker.objects.get(condition_type="consecutive_losses")
    stop = CircuitBreaker.objects.get(condition_type="pnl")

    def trip(breaker, key, **fields):
        return breaker_trip(breaker, trader, key, **fields)

    exposure = RiskLimitFactory(
        user=trader,
        symbol=None,
        limit_type="total_exposure",
        threshold_value=D("1000"),
        warning_value=None,
        ladder=[{"at_pct": "50", "do": "alert"}, {"at_pct": "80", "do": "cancel_orders"}],
    )

    def step(at_pct, **fields):
        return LadderTrip.objects.create(
            limit=exposure,
            user=trader,
            latch_key=f"ladder:{exposure.pk}:*:{at_pct}",
            limit_type="total_exposure",
            threshold=exposure.threshold_value,
            at_pct=D(at_pct),
            action="alert",
            client_order_id=uuid.uuid4().hex[:32],
            **fields,
        )

    step("50", dry_run=False, triggered_at=now - timedelta(seconds=10))
    step("80", dry_run=False, triggered_at=now - timedelta(seconds=20), released_at=now - timedelta(seconds=5))
    step("80", dry_run=False, triggered_at=now - timedelta(hours=1), released_at=now - timedelta(minutes=50))
    trip(stop, "position:1", dry_run=True, action_result="Dry run: would close")
    trip(stop, "position:2", dry_run=False, triggered_at=now - timedelta(seconds=30), released_at=now)
    trip(streak, f"streak:{paper.id}:BTCUSDT", dry_run=True, released_at=now, release_reason="rearmed")
    return paper


def test_request_loads_read_what_the_shared_loaders_read(trader, make_user, default_breakers, settings):
    from risk.services.config import global_config_get

    global_config = global_config_get()
    global_config.alert_cooldown_seconds = 60
    global_config.save()
    config_cache_clear()
    _mixed_desk(trader, make_user)
    config = config_view_get(fresh=True)
    now = timezone.now()

    book, desk = request_loads.book_and_desk_load(user_id=trader.pk, config=config, now=now)
    expected_book = book_load(user_id=trader.pk)
    assert book.positions == expected_book.positions
    assert book.accounts == expected_book.accounts
    expected_desk = desk_totals_load(
        config=config,
        symbols={p.symbol for p in book.positions},
        exchanges={p.exchange for p in book.positions},
    )
    assert desk == expected_desk
    assert desk.symbol_net and desk.exchange_exposure

    state = request_loads.state_load(user_id=trader.pk, config=config, now=now)
    assert state.open_state == open_states_load(user_ids=[trader.pk], config=config, now=now)[trader.pk]
    assert state.open_state.alert_keys == {"open:1"} and set(state.open_state.cooling) == {"cool:1"}
    assert [key.rsplit(":", 1)[1] for key in state.open_state.steps] == ["50"]  # the latched ladder step
    assert sorted(key.rsplit(":", 1)[1] for key in state.open_state.step_last_action) == ["50", "80"]
    assert state.limits == limits_load(user_id=trader.pk)
    assert [limit.ladder for limit in state.limits if limit.ladder] == [((D(50), "alert"), (D(80), "cancel_orders"))]
    latched_keys = [key for _, key in state.open_state.latched]
    assert request_loads.streak_inputs(state, book=book, latched_keys=latched_keys) == streak_inputs_load(
        book=book, config=config, latched_keys=latched_keys
    )
    assert list(state.action_results.values()) == ["Dry run: would close"]


def test_reused_sql_follows_the_clock(trader, make_user, default_breakers):
    """The compiled query is reused; the UTC day and the cooldown window are not."""
    from risk.services.config import global_config_get

    global_config = global_config_get()
    global_config.alert_cooldown_seconds = 60
    global_config.save()
    config_cache_clear()
    paper = _mixed_desk(trader, make_user)
    config = config_view_get(fresh=True)
    now = timezone.now()

    assert "cool:1" in request_loads.state_load(user_id=trader.pk, config=config, now=now).open_state.cooling
    later = request_loads.state_load(user_id=trader.pk, config=config, now=now + timedelta(seconds=120))
    assert "cool:1" not in later.open_state.cooling  # the cooldown ran out with time alone

    today = AccountDay.objects.get(account=paper).date
    book, _ = request_loads.book_and_desk_load(user_id=trader.pk, config=config, now=now)
    assert book.accounts[paper.id].day_realized == D("-12.5")
    # Past midnight UTC: no row for the new day yet, so nothing realized and the last
    # synced unrealized PnL as the day's start, as snapshots.accounts_load says.
    tomorrow = datetime.combine(today + timedelta(days=1), time(0, 0, 1), tzinfo=UTC)
    next_day, _ = request_loads.book_and_desk_load(user_id=trader.pk, config=config, now=tomorrow)
    assert next_day.accounts[paper.id].day_realized == 0
    AccountDay.objects.create(
        account=paper,
        date=today + timedelta(days=1),
        realized_pnl=D("7"),
        start_unrealized=D("1"),
        start_balance=D(0),
        last_balance=D(0),
        updated_at=timezone.now(),
    )
    next_day, _ = request_loads.book_and_desk_load(user_id=trader.pk, config=config, now=tomorrow)
    assert next_day.accounts[paper.id].day_realized == 7


# --- what time alone changes, through evaluation_run with its SQL compiled once and, where
# no row changed, the views and statuses of the call before reused ---------------------------
@pytest.fixture
def compiled_once():
    """Asserts, after the test, that its evaluations reused the SQL compiled by the first."""
    text_rows._compiled.clear()
    yield
    assert len(text_rows._compiled) == 2  # the book's and the state's shapes, nothing more


def _configure(**fields) -> None:
    from risk.services.config import global_config_get

    GlobalConfig.objects.filter(pk=global_config_get().pk).update(**fields)
    config_cache_clear()  # as the service's after-commit version bump would


def _reused(first, second) -> bool:
    """Did `second` reuse the views, metrics and statuses of `first` (risk.services.request_memo)?"""
    return second.metrics is first.metrics and second.statuses is first.statuses


def _alert_types(user) -> set:
    return set(user.risk_alerts.exclude(status=AlertStatus.RESOLVED).values_list("alert_type", flat=True))


def test_time_alone_turns_a_mark_stale(trader, compiled_once):
    _configure(max_price_age_seconds=60)
    t0 = books.position(books.account(trader), "BTCUSDT").mark_updated_at
    CircuitBreakerFactory(name="stop", condition_type="pnl", threshold=D(1000), action="cancel_all_orders")
    assert evaluation_run(user_id=trader.pk, now=t0).stale_positions == 0
    fresh = evaluation_run(user_id=trader.pk, now=t0 + timedelta(seconds=60))
    later = evaluation_run(user_id=trader.pk, now=t0 + timedelta(seconds=61))
    assert _reused(fresh, later)
    assert (fresh.stale_positions, later.stale_positions) == (0, 1)
    assert _alert_types(trader) == {"data_stale"}


def test_time_alone_trips_a_time_based_breaker(trader, compiled_once):
    _configure(max_price_age_seconds=10**7)
    t0 = timezone.now()
    books.position(books.account(trader), "BTCUSDT", opened_at=t0 - timedelta(seconds=500))
    CircuitBreakerFactory(name="hold", condition_type="time_based", threshold=D(600), action="cancel_all_orders")
    early = evaluation_run(user_id=trader.pk, now=t0 + timedelta(seconds=99))
    due = evaluation_run(user_id=trader.pk, now=t0 + timedelta(seconds=100))
    assert _reused(early, due)
    assert (early.new_trips, due.new_trips) == (0, 1)
    assert BreakerTrip.objects.get().breaker_name == "hold"


def test_time_alone_ends_the_alert_cooldown(trader, compiled_once):
    """Exceeded, cleared (resolves), exceeded again within the cooldown (held), then the
    same book after the cooldown: raised again, with nothing written in between."""
    _configure(max_price_age_seconds=10**7, alert_cooldown_seconds=60)
    CircuitBreaker.objects.all().delete()
    RiskLimitFactory(user=trader, symbol="BTCUSDT", threshold_value=D(150), warning_value=None)
    position = books.position(books.account(trader), "BTCUSDT", size="2", entry="100")
    t0 = timezone.now()
    evaluation_run(user_id=trader.pk, now=t0)
    assert _alert_types(trader) == {"position_size_exceeded"}
    Position.objects.filter(pk=position.pk).update(notional=D(100))
    evaluation_run(user_id=trader.pk, now=t0 + timedelta(seconds=1))
    assert _alert_types(trader) == set()
    Position.objects.filter(pk=position.pk).update(notional=D(200))
    held = evaluation_run(user_id=trader.pk, now=t0 + timedelta(seconds=60))
    raised = evaluation_run(user_id=trader.pk, now=t0 + timedelta(seconds=61))
    assert _reused(held, raised)
    assert held.alerts_raised == []
    assert [alert.alert_type for alert in raised.alerts_raised] == ["position_size_exceeded"]


def test_time_alone_ends_the_breaker_cooldown(trader, officer, compiled_once):
    """A live stop-loss acts, an officer re-arms it with the loss still there: held by
    the breaker's cooldown, then acted on again once it has passed, time alone moving."""
    _configure(max_price_age_seconds=10**7, dry_run=False)
    books.position(books.account(trader), "BTCUSDT", size="1", entry="100", mark="85")
    CircuitBreakerFactory(
        name="stop", condition_type="pnl", threshold=D(10), action="cancel_all_orders", cooldown_seconds=120
    )
    t0 = timezone.now()
    assert evaluation_run(user_id=trader.pk, now=t0).new_trips == 1
    trip_rearm(actor=officer, trip=BreakerTrip.objects.get())
    held = evaluation_run(user_id=trader.pk, now=t0 + timedelta(seconds=119))
    assert held.new_trips == 0
    assert [report.action_status for report in held.breakers] == ["cooldown"]
    acted = evaluation_run(user_id=trader.pk, now=t0 + timedelta(seconds=120))
    assert _reused(held, acted)
    assert acted.new_trips == 1
    assert BreakerTrip.objects.filter(dry_run=False).count() == 2


def test_time_alone_rolls_the_day_over_at_midnight_utc(trader, compiled_once):
    """A 5,000 loss realized today breaches a 1,000 daily_loss limit until 23:59:59 UTC;
    at 00:00:01 the new day has no loss yet (no sync since midnight) and it resolves."""
    _configure(max_price_age_seconds=10**7)
    CircuitBreaker.objects.all().delete()
    account = books.account(trader, day_realized="-5000")
    books.position(account, "BTCUSDT")
    RiskLimitFactory(user=trader, symbol=None, limit_type="daily_loss", threshold_value=D(1000), warning_value=None)
    day = AccountDay.objects.get(account=account).date
    evaluation_run(user_id=trader.pk, now=datetime.combine(day, time(23, 59, 59), tzinfo=UTC))
    assert _alert_types(trader) == {"daily_loss_exceeded"}
    after = evaluation_run(user_id=trader.pk, now=datetime.combine(day + timedelta(days=1), time(0, 0, 1), tzinfo=UTC))
    assert [alert.alert_type for alert in after.alerts_resolved] == ["daily_loss_exceeded"]
    assert _alert_types(trader) == set()
