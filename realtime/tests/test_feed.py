"""The feed end to end on the paper exchange (SPEC §7, issue 11): monitored markets are
streamed; each tick is published once on the Redis stream, moves the marks of open
positions (persisted within about a second) and is evaluated in process, so a limit
crossed by a tick raises its alert within the same second; monitoring start and stop
take effect live."""

import asyncio
import json
import time
from decimal import Decimal

import pytest
import redis.asyncio
from asgiref.sync import sync_to_async
from django.conf import settings

from accounts.models import Position
from accounts.services.monitoring import monitoring_start, monitoring_stop
from accounts.services.paper import paper_order_execute, paper_price_set
from accounts.services.sync import account_sync
from realtime.feed.service import Feed
from realtime.streams import TICKER_CHANNEL
from risk.models import RiskAlert
from risk.tests.factories import RiskLimitFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_paper")]

D = Decimal


@pytest.fixture
def fast_paper(settings):
    settings.PAPER_TICK_SECONDS = 0.05


def clients():
    url = settings.REDIS_PLATFORM_URL
    return redis.asyncio.Redis.from_url(url, socket_timeout=10), redis.asyncio.Redis.from_url(url)


async def eventually(check, *, timeout: float = 10.0, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = await sync_to_async(check, thread_sensitive=False)()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        await asyncio.sleep(0.05)


async def run_feed(body):
    """Run a Feed while `body(feed)` runs, then stop it."""
    client, listener = clients()
    feed = Feed(redis_client=client, listener_client=listener)
    stop = asyncio.Event()
    task = asyncio.create_task(feed.run(stop))
    try:
        await asyncio.wait_for(feed.listening.wait(), timeout=10)
        await body(feed)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)
        await client.aclose()
        await listener.aclose()


@pytest.fixture
def long_btc(trader, paper_account):
    paper_price_set(symbol="BTCUSDT", price=D(50000))
    paper_order_execute(account_id=paper_account.pk, symbol="BTCUSDT", side="buy", amount=D("0.2"))
    account_sync(account=paper_account)
    return paper_account


def test_a_tick_is_published_moves_the_mark_and_raises_the_alert_within_a_second(trader, long_btc):
    RiskLimitFactory(user=trader, symbol="BTCUSDT", threshold_value=D(10500), warning_value=None)
    monitoring_start(exchanges=["paper"])

    async def body(feed):
        subscriber = redis.asyncio.Redis.from_url(settings.REDIS_PLATFORM_URL).pubsub()
        await subscriber.subscribe(TICKER_CHANNEL)
        frame = None
        deadline = time.monotonic() + 10
        while frame is None and time.monotonic() < deadline:
            message = await subscriber.get_message(ignore_subscribe_messages=True, timeout=1)
            if message:
                frame = json.loads(message["data"])
        await subscriber.aclose()
        assert frame is not None, "no ticker frame"
        assert frame["channel"] == "ticker" and frame["exchange"] == "paper" and frame["symbol"] == "BTCUSDT"
        assert frame["price"] == "50000.00" and frame["timestamp"].endswith("Z")

        await sync_to_async(paper_price_set, thread_sensitive=False)(symbol="BTCUSDT", price=D(53000))
        crossed_at = time.monotonic()
        await eventually(
            lambda: RiskAlert.objects.filter(user=trader, alert_type="position_size_exceeded").exists(),
            message="the position_size alert",
        )
        assert time.monotonic() - crossed_at < 1.5
        position = await eventually(
            lambda: Position.objects.filter(account=long_btc, mark_price=D(53000), closed_at__isnull=True).first(),
            message="the persisted mark",
        )
        assert position.notional == D(10600)

    asyncio.run(run_feed(body))


def test_monitoring_stop_and_start_are_picked_up_live(trader, long_btc):
    monitoring_start(exchanges=["paper"], symbols=["ETHUSDT"])

    async def body(feed):
        await eventually(lambda: "paper" in feed.venues, message="the paper venue")
        venue = feed.venues["paper"]
        assert venue.status.symbols == ["BTCUSDT", "ETHUSDT"]  # the open position's symbol too
        await sync_to_async(monitoring_stop, thread_sensitive=False)()
        started = time.monotonic()
        await eventually(lambda: "paper" not in feed.venues, message="the venue to stop", timeout=5)
        assert time.monotonic() - started < 2
        await sync_to_async(monitoring_start, thread_sensitive=False)(exchanges=["paper"], symbols=["SOLUSDT"])
        await eventually(lambda: "paper" in feed.venues, message="the venue to start again", timeout=5)
        assert feed.venues["paper"].status.symbols == ["BTCUSDT", "SOLUSDT"]

    asyncio.run(run_feed(body))


def test_a_venue_silent_longer_than_max_price_age_raises_data_stale_once_then_resolves(trader, long_btc):
    """Issue 11: no ticks for longer than max_price_age_seconds -> one data_stale alert
    (the position's breakers hold); ticks return -> it resolves."""
    from risk.services.config import global_config_update
    from risk.tests.factories import CircuitBreakerFactory

    global_config_update(actor=None, max_price_age_seconds=1)
    CircuitBreakerFactory(name="stop", condition_type="pnl", threshold=D(1000000), action="close_position")
    monitoring_start(exchanges=["paper"])

    def stale_alerts(status=None):
        alerts = RiskAlert.objects.filter(user=trader, alert_type="data_stale")
        return list(alerts.filter(status=status) if status else alerts)

    async def body(feed):
        await eventually(lambda: feed.ticks > 0, message="ticks")
        await sync_to_async(monitoring_stop, thread_sensitive=False)()  # the venue goes silent
        await eventually(lambda: stale_alerts("triggered"), message="the data_stale alert", timeout=8)
        await asyncio.sleep(2.5)  # more sweeps: still one alert
        assert len(await sync_to_async(stale_alerts, thread_sensitive=False)()) == 1
        await sync_to_async(monitoring_start, thread_sensitive=False)(exchanges=["paper"])
        await eventually(lambda: stale_alerts("resolved"), message="the alert to resolve", timeout=8)

    asyncio.run(run_feed(body))


def test_binance_tickers_stream_through_ccxt_pro_and_positions_take_the_venues_mark(
    trader, binance_server, make_exchange_account
):
    """The local Binance server's ticker stream, through ccxt.pro, reaches the feed; the
    positions' marks are the venue's mark prices (premiumIndex), not the last trade."""
    account = make_exchange_account(trader, "binanceusdm")
    binance_server.set_position("BTCUSDT", 0.5, entry_price=60000)
    account_sync(account=account)
    monitoring_start(exchanges=["binanceusdm"])

    async def body(feed):
        await eventually(lambda: "binanceusdm" in feed.venues and feed.ticks > 0, message="binance ticks")
        assert feed.venues["binanceusdm"].status.state == "connected"
        binance_server.set_price("BTCUSDT", 61000)  # the last trade, on the ticker stream
        binance_server.set_mark_price("BTCUSDT", 60500)  # the venue's mark: breakers act on it (SPEC §5)
        await eventually(
            lambda: Position.objects.filter(account=account, mark_price=D(60500)).exists(),
            message="the venue's mark price",
        )
        assert not any(r.path.startswith("/fapi/v1/ticker") for r in binance_server.requests)  # tickers stream
        assert binance_server.requests_to("/fapi/v1/premiumIndex")  # marks: one call for every symbol

    asyncio.run(run_feed(body))


def test_binance_stream_refused_the_feed_polls_rest_and_marks_still_move(trader, binance_server, make_exchange_account):
    """The venue's stream is unavailable: after a few failed reconnects (backoff with
    jitter) the venue falls back to REST polling; ticks and marks keep coming."""
    account = make_exchange_account(trader, "binanceusdm")
    binance_server.set_position("BTCUSDT", 0.5, entry_price=60000)
    account_sync(account=account)
    binance_server.refuse_streams()
    monitoring_start(exchanges=["binanceusdm"])

    async def body(feed):
        await eventually(
            lambda: "binanceusdm" in feed.venues and feed.venues["binanceusdm"].status.state == "polling",
            message="the polling fallback",
            timeout=20,
        )
        assert feed.venues["binanceusdm"].status.last_error
        binance_server.set_price("BTCUSDT", 61500)
        ticked = feed.ticks
        await eventually(lambda: feed.ticks > ticked, message="polled ticks")
        assert any(r.path.startswith("/fapi/v1/ticker") for r in binance_server.requests)  # REST polling
        await eventually(
            lambda: Position.objects.filter(account=account, mark_price=D(61500)).exists(), message="marks"
        )

    asyncio.run(run_feed(body))


def test_a_limit_changed_elsewhere_reaches_the_running_feed_by_message_without_a_read_per_batch(trader, long_btc):
    """The settings version comes to the feed on `etrms:risk:index` (no GET per tick
    batch): a threshold lowered by another process takes effect at the feed's next tick."""
    from django.db import transaction

    from risk.models import RiskLimit
    from risk.services import hooks

    limit = RiskLimitFactory(user=trader, symbol="BTCUSDT", threshold_value=D(20000), warning_value=None)
    monitoring_start(exchanges=["paper"])

    def lowered_elsewhere():
        """What another process's change leaves here: the row and the version's bump."""
        with transaction.atomic():
            RiskLimit.objects.filter(pk=limit.pk).update(threshold_value=D(9000))
            hooks.limits_changed(user_ids=set())  # nobody re-evaluated here: the feed must see it
        return hooks.index_version()

    async def body(feed):
        await eventually(lambda: feed.index.announced_version is not None, message="the version followed")
        await asyncio.sleep(0.3)  # ticks at 10,000 of notional: under 20,000, nothing raised
        exceeded = RiskAlert.objects.filter(user=trader, alert_type="position_size_exceeded")
        assert not await sync_to_async(exceeded.exists)()
        bumped = await sync_to_async(lowered_elsewhere, thread_sensitive=False)()
        changed_at = time.monotonic()
        await eventually(lambda: feed.index.announced_version == bumped, message="the bump announced", timeout=2)
        await eventually(exceeded.exists, message="the alert at the new threshold")
        assert time.monotonic() - changed_at < 1.5
        assert feed.index.config.version == bumped

    asyncio.run(run_feed(body))
