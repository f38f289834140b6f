"""A tick that may cross a level goes before the desk's other ticks (SPEC §11: tick ->
alert p99 <= 20 ms): the feed asks the risk index's quiet prices on every tick and
drains such a market first, in a batch of its own."""

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.test import override_settings

from accounts.exchanges.base import Ticker
from realtime.feed.service import Feed
from risk.models import RiskAlert
from risk.services.config import global_config_get
from risk.services.index import RiskIndex
from risk.tests import books
from risk.tests.factories import RiskLimitFactory

pytestmark = pytest.mark.django_db

D = Decimal
OTHERS = [f"S{n:02d}USDT" for n in range(30)]


def ticker(symbol: str, price, at: datetime | None = None) -> Ticker:
    return Ticker(symbol, D(price), None, None, None, None, None, None, None, None, at or datetime.now(UTC))


@pytest.fixture
def desk(trader, make_user):
    """The trader holds BTC (position_size warning at 120, limit at 150); ten other users
    hold 30 other markets, 10 positions each (300)."""
    config = global_config_get()
    for name in ("max_total_exposure", "max_leverage", "max_drawdown_pct", "daily_loss_limit", "max_margin_ratio"):
        setattr(config, name, None)
    config.save()
    books.position(books.account(trader), "BTCUSDT", "long", size="1", entry="100")
    RiskLimitFactory(user=trader, threshold_value=D(150), warning_value=D(120))
    for _ in range(10):
        other = books.account(make_user())
        for symbol in OTHERS:
            books.position(other, symbol, "long", size="1", entry="100")
    index = RiskIndex().load()
    index.apply_marks(exchange="paper", prices_by_symbol={symbol: D(100) for symbol in ["BTCUSDT", *OTHERS]})
    return index


def feed_behind_the_desk(index, symbol: str, price: str) -> Feed:
    """A feed on `index` whose 30 other markets ticked, then `symbol` at `price`."""
    feed = Feed(redis_client=None, listener_client=None)
    feed.index = index

    async def ticks():
        for other in OTHERS:
            await feed.on_ticker("paper", ticker(other, "100.5"))
        await feed.on_ticker("paper", ticker(symbol, price))

    asyncio.run(ticks())
    return feed


@override_settings(FEED_BATCH_POSITIONS=50)
def test_a_crossing_tick_behind_the_whole_desk_is_evaluated_in_the_next_batch(trader, desk):
    """Scenario: 30 markets of 10 positions tick (six batches of 50 positions), then BTC
    ticks at 121, past the trader's warning at 120. The next batch is BTC alone and
    raises the warning; the 30 markets follow in arrival order."""
    feed = feed_behind_the_desk(desk, "BTCUSDT", "121")
    first = feed.batch.drain(budget=50, weight=feed._positions_in)
    assert list(first.latest) == [("paper", "BTCUSDT")]
    feed._evaluate(first)
    assert RiskAlert.objects.filter(user=trader, alert_type="position_size_warning").exists()

    rest = []
    while feed.batch.ready.is_set():
        rest += list(feed.batch.drain(budget=50, weight=feed._positions_in).latest)
    assert rest == [("paper", symbol) for symbol in OTHERS]


def test_a_tick_inside_the_quiet_prices_waits_its_turn(desk):
    feed = Feed(redis_client=None, listener_client=None)
    feed.index = desk
    asyncio.run(feed.on_ticker("paper", ticker("BTCUSDT", "119")))
    assert feed.batch.urgent == {} and ("paper", "BTCUSDT") in feed.batch.latest


def test_the_feed_rereads_a_user_for_another_process_alert_but_not_for_its_own(trader):
    """The index re-reads what is open once its own writes are out; the echo of its own
    alert on `etrms:alerts` would unband the user again (the next tick then waited for
    a full evaluation instead of going first)."""
    import json

    from risk.publish import PROCESS_ORIGIN, REDIS_ALERTS_CHANNEL

    feed = Feed(redis_client=None, listener_client=None)

    def message(origin):
        return json.dumps({"user_id": str(trader.pk), "alert": {"id": 1}, "origin": origin}).encode()

    asyncio.run(feed._message(REDIS_ALERTS_CHANNEL.encode(), message(PROCESS_ORIGIN)))
    assert feed.reload_users == set()
    asyncio.run(feed._message(REDIS_ALERTS_CHANNEL.encode(), message("another-process")))
    assert feed.reload_users == {trader.pk}


def test_a_market_ticking_alone_is_not_held_back_by_another_venue_clock(trader, desk):
    """Scenario (venues' clocks differ between symbols): BTC at 116 stamped t+10 ms and an
    ETH tick stamped t+60 ms are evaluated in one batch; then BTC ticks at 121 stamped
    t+40 ms, past the trader's warning at 120, and goes alone. Its mark moves and the
    warning is raised: BTC's positions carry BTC's own time, not the batch's latest."""
    from datetime import timedelta

    t = datetime.now(UTC)
    feed = Feed(redis_client=None, listener_client=None)
    feed.index = desk

    async def ticks(*items):
        for symbol, price, offset in items:
            await feed.on_ticker("paper", ticker(symbol, price, t + timedelta(milliseconds=offset)))

    asyncio.run(ticks(("BTCUSDT", "116", 10), ("S00USDT", "100.1", 60)))
    feed._evaluate(feed.batch.drain(budget=1000, weight=feed._positions_in))
    asyncio.run(ticks(("S00USDT", "100.2", 70), ("BTCUSDT", "121", 40)))
    first = feed.batch.drain(budget=1000, weight=feed._positions_in)
    assert list(first.latest) == [("paper", "BTCUSDT")]
    feed._evaluate(first)
    assert RiskAlert.objects.filter(user=trader, alert_type="position_size_warning").exists()


def test_a_tick_reaching_a_price_alert_target_goes_first(trader, desk):
    """Scenario: the trader's price alert on SOL above 150; 30 markets wait, then SOL
    ticks at 150.5 (nobody holds SOL: no band says anything). The next batch is SOL
    alone, and the alert fires."""
    from realtime.models import PriceAlert
    from realtime.services.price_alert_index import price_alert_index

    PriceAlert.objects.create(user=trader, exchange="paper", symbol="SOLUSDT", condition="above", target_price=D(150))
    price_alert_index().reload()
    feed = feed_behind_the_desk(desk, "SOLUSDT", "150.5")
    first = feed.batch.drain(budget=50, weight=feed._positions_in)
    assert list(first.ranges) == [("paper", "SOLUSDT")]
    feed._evaluate(first)
    assert PriceAlert.objects.get().status == "triggered"


@override_settings(FEED_BATCH_POSITIONS=50)
def test_the_tick_back_that_came_while_a_crossing_was_written_goes_first(trader, desk):
    """Scenario (the feed benchmark's crossing and its way back): BTC at 121 passes the
    trader's warning at 120. While its batch is still being evaluated, the 30 other
    markets tick and then BTC ticks back at 110: judged at arrival against the quiet
    prices from before the crossing (which held 110), it was not urgent. Once the
    batch ends, the new bands put a level between (the warning resolves below 120), and
    the tick back goes first. Before, it waited behind the six batches of the desk."""
    feed = feed_behind_the_desk(desk, "BTCUSDT", "121")
    feed.batch.ordinary_wait = 60  # however long this test's evaluation takes
    crossing = feed.batch.drain(budget=50, weight=feed._positions_in)

    async def meanwhile():
        for other in OTHERS:
            await feed.on_ticker("paper", ticker(other, "100.6"))
        await feed.on_ticker("paper", ticker("BTCUSDT", "110"))

    asyncio.run(meanwhile())
    assert ("paper", "BTCUSDT") not in feed.batch.urgent  # the quiet prices from before the crossing
    feed._evaluate(crossing)
    feed.batch.urgent_again(feed._urgent)  # as the evaluation loop does after each batch
    assert list(feed.batch.drain(budget=50, weight=feed._positions_in).latest) == [("paper", "BTCUSDT")]
