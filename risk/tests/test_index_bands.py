"""The index's price bands (risk.services.index_bands): a tick inside every band of a
user evaluates nobody, and no sequence of ticks leaves a user whose evaluation would
write something the bands let pass (every level the one decision path knows is a
band edge)."""

import copy
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from risk.models import BreakerTrip, RiskAlert
from risk.services import assess, prices
from risk.services.config import global_config_get
from risk.services.evaluation import compute
from risk.services.index import RiskIndex
from risk.services.index_bands import past_peak
from risk.services.outcome import outcome_decide
from risk.tests import books
from risk.tests.factories import CircuitBreakerFactory, RiskLimitFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_caps")]

D = Decimal


def _desk(user, *, drawdown_limit: bool = True):
    """BTC long 10 @ 100 and ETH short 20 @ 50 on a 10,000 account: limits of every
    price-moved kind (position size with a ladder step at 87.5 %), the desk's own drawdown
    cap, and four price breakers."""
    acct = books.account(user, balance="10000")
    books.position(acct, "BTCUSDT", "long", size="10", entry="100")
    books.position(acct, "ETHUSDT", "short", size="20", entry="50")
    for kind, symbol, threshold, warning in (
        ("position_size", "BTCUSDT", "1200", "1100"),
        ("total_exposure", None, "2300", "2100"),
        ("daily_loss", None, "150", "100"),
        ("leverage", None, "0.23", "0.21"),
        ("drawdown", None, "1.5", "1"),
    )[: None if drawdown_limit else -1]:
        RiskLimitFactory(
            user=user,
            limit_type=kind,
            symbol=symbol,
            threshold_value=D(threshold),
            warning_value=D(warning),
            # A graded ladder step (issue 15) under the warning (BTC at 105): a level too.
            ladder=[{"at_pct": "87.5", "do": "alert"}] if kind == "position_size" else [],
        )
    config = global_config_get()
    config.alert_cooldown_seconds = 0
    config.max_drawdown_pct = D(2)
    config.save()
    breakers = (("pnl", "120"), ("max_drawdown", "5"), ("trailing_stop", "8"), ("max_position_size", "1300"))
    for kind, threshold in breakers:
        CircuitBreakerFactory(
            condition_type=kind, threshold=D(threshold), action="cancel_all_orders", cooldown_seconds=0
        )


def _pending_writes(index, user_id, now) -> bool:
    """Would an evaluation now (as on every tick before bands) write anything?"""
    book = copy.deepcopy(index.books[user_id])
    closed_trades, cutoffs = index.streaks.get(user_id, ({}, {}))
    inputs = assess.BreakerInputs(closed_trades=closed_trades, streak_cutoffs=cutoffs, price_ranges={})
    computed = compute(
        book=book, limits=index.limits.get(user_id, []), config=index.config, desk=index.desk, now=now, inputs=inputs
    )
    decision = outcome_decide(computed=computed, state=index.states[user_id], config=index.config, now=now)
    return decision.writes_state or bool(decision.peaks)


def test_a_tick_inside_the_bands_evaluates_nobody_and_one_past_a_level_its_owner(trader, make_user):
    _desk(trader, drawdown_limit=False)  # at its equity peak, a drawdown limit evaluates every tick
    other = make_user()
    books.position(books.account(other), "BTCUSDT", "long", size="1", entry="100")
    index = RiskIndex().load()
    index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D("100.5"), "ETHUSDT": D("50")})
    evaluations = index.evaluations
    # A new best price moves the drawdown and trailing-stop levels: bands follow, no evaluation.
    assert index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D("100.6")}) == set()
    assert index.evaluations == evaluations
    # 112: BTC's notional 1,120 passes its position_size warning (1,100): the trader only.
    assert index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D("112")}) == {trader.pk}


def test_the_quiet_prices_of_a_market_end_at_its_positions_nearest_level(trader, make_user):
    """Scenario: BTC long 1 @ 100 with a position_size warning at 120 and a limit at 150;
    another holder of BTC long 1 @ 100 with a limit at 135. After a tick at 110 the feed
    may let 111-119 wait their turn behind other markets, but a tick at 121 must go
    first: the market's quiet prices end just below 120. Once 130 crossed the warning,
    the other holder's 135 is the nearest level."""
    books.position(books.account(trader), "BTCUSDT", "long", size="1", entry="100")
    RiskLimitFactory(user=trader, threshold_value=D(150), warning_value=D(120))
    other = make_user()
    books.position(books.account(other), "BTCUSDT", "long", size="1", entry="100")
    RiskLimitFactory(user=other, threshold_value=D(135), warning_value=None)
    index = RiskIndex().load()
    assert index.quiet == {}  # nobody evaluated yet: no tick waits for a band it lacks
    index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D(110)})
    low, high = index.quiet[("paper", "BTCUSDT")]
    assert low < 111 and 119 < high < 120
    assert index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D(130)}) == {trader.pk}
    low, high = index.quiet[("paper", "BTCUSDT")]
    assert low < 130 and 134 < high < 135
    index.states_reload([other.pk])  # a change made elsewhere: every tick goes first until bands are back
    index.evaluate({trader.pk})  # even when another holder's evaluation refreshes the market
    low, high = index.quiet[("paper", "BTCUSDT")]
    assert not low < 130 < high and not low < 100 < high
    index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D(130)})
    assert index.quiet[("paper", "BTCUSDT")][0] < 130 < index.quiet[("paper", "BTCUSDT")][1]


def test_a_mark_back_at_a_positions_peak_is_quiet(trader):
    """Scenario: BTC long 10 @ 100 under a trailing stop; ticks at 104 then 103 leave its
    peak at 104. A tick back at exactly 104 is not past the peak (it moves nothing), so
    it waits its turn; 104.01 moves the peak and goes first. Before, the quiet prices
    ended strictly below the peak and every tick revisiting it went first (a seventh of
    the feed benchmark's ticks)."""
    _desk(trader, drawdown_limit=False)
    index = RiskIndex().load()
    for price in ("104", "103"):
        index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D(price)})
    [position] = index.by_market[("paper", "BTCUSDT")]
    assert index.bands[position.id].peak == 104
    low, high = index.quiet[("paper", "BTCUSDT")]
    assert low < 104 < high and not high > 104.01


ticks = st.lists(
    st.tuples(
        st.sampled_from(["BTCUSDT", "ETHUSDT"]),
        st.integers(min_value=-30, max_value=30),
    ),
    min_size=5,
    max_size=40,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(moves=ticks)
def test_no_tick_sequence_leaves_a_crossing_the_bands_let_pass(trader, moves):
    with transaction.atomic():
        _desk(trader)
        index = RiskIndex().load()
        now = timezone.now()
        index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D(100), "ETHUSDT": D(50)}, at=now)
        for symbol, step in moves:
            now += timedelta(milliseconds=10)
            base = D(100) if symbol == "BTCUSDT" else D(50)
            price = base * (1 + D(step) / 200)
            low, high = index.quiet.get(("paper", symbol), (None, None))
            if low is not None and low < float(price) < high:  # the feed lets such a tick wait its turn:
                for position in index.by_market[("paper", symbol)]:  # it is inside every band there
                    band = index.bands.get(position.id)
                    if band is not None and band.low < band.high:  # (the rest evaluate on every tick)
                        assert band.contains(float(price)) and not past_peak(band, position, float(price))
            index.apply_marks(exchange="paper", prices_by_symbol={symbol: price}, at=now)
            assert not _pending_writes(index, trader.pk, now), (symbol, step)
        transaction.set_rollback(True)


def test_a_tick_completing_a_volatility_range_inside_every_band_still_trips(trader):
    """Ranges are not banded: 100 at -55 s, then ticks at 105 and 111 (a 11 % range of a
    10 % breaker over 60 s) trip it although no other level lies near the marks."""
    books.position(books.account(trader), "BTCUSDT", entry="100")
    CircuitBreakerFactory(
        condition_type="volatility",
        threshold=D(10),
        action="cancel_all_orders",
        additional_params={"window_seconds": 60},
    )
    index = RiskIndex().load()
    now = timezone.now()
    prices.price_samples_record([("paper", "BTCUSDT", D(100), (now - timedelta(seconds=55)).timestamp())])
    index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D(105)}, at=now)
    assert not BreakerTrip.objects.exists()
    index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D(111)}, at=now + timedelta(seconds=1))
    assert BreakerTrip.objects.get().context["range_pct"] == 11.0


def test_the_sweep_evaluates_only_users_whose_due_time_came(trader, make_user):
    """max_price_age 10 s: the trader's BTCUSDT goes silent after a tick at t0; another
    user's ETHUSDT crosses their position_size warning at t0 + 9 s (evaluated then). The
    sweep at t0 + 5 s evaluates nobody, the one at t0 + 11 s the trader only (their mark
    went stale), whose data_stale alert it raises."""
    books.position(books.account(trader), "BTCUSDT", entry="100")
    other = make_user()
    books.position(books.account(other), "ETHUSDT", entry="50")
    RiskLimitFactory(user=other, symbol="ETHUSDT", threshold_value=D(60), warning_value=D(55))
    CircuitBreakerFactory(condition_type="pnl", threshold=D(1000), action="cancel_all_orders")
    config = global_config_get()
    config.max_price_age_seconds = 10
    config.save()
    index = RiskIndex().load()
    index.swept_at = time.monotonic()  # the full pass just ran
    t0 = timezone.now()
    index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D(101), "ETHUSDT": D(51)}, at=t0)
    assert index.sweep(now=t0 + timedelta(seconds=5)) == {} and index.evaluations == 2
    index.apply_marks(exchange="paper", prices_by_symbol={"ETHUSDT": D(56)}, at=t0 + timedelta(seconds=9))
    assert index.evaluations == 3
    written = index.sweep(now=t0 + timedelta(seconds=11))
    assert list(written) == [trader.pk] and index.evaluations == 4
    assert RiskAlert.objects.get(alert_type="data_stale").user_id == trader.pk


def test_a_tick_reaching_a_ladder_step_under_the_warning_evaluates_its_owner(trader):
    """position_size 1,200 (warning 1,100) with a ladder step at 87.5 % (1,050): BTC 10 @
    100 ticking to 106 (1,060) reaches the step, far from the warning and threshold."""
    books.position(books.account(trader), "BTCUSDT", "long", size="10", entry="100")
    RiskLimitFactory(
        user=trader,
        threshold_value=D(1200),
        warning_value=D(1100),
        ladder=[{"at_pct": "87.5", "do": "alert"}],
    )
    index = RiskIndex().load()
    index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D(100)})
    assert index.apply_marks(exchange="paper", prices_by_symbol={"BTCUSDT": D(106)}) == {trader.pk}
    assert "87.5% of its threshold" in RiskAlert.objects.get(user=trader).message
