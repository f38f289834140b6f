"""The venue's dead-man's switch (issue 15 item 3): the feed keeps Binance USD-M's
`countdownCancelAll` armed for monitored accounts where the exchange config sets it, so
the local Binance server cancels the open orders by itself once the feed goes silent;
never on paper; a failure to arm is logged and retried, never the end of the feed."""

import asyncio
import logging

import pytest

from accounts.exchanges import ExchangeNotSupported, exchange_open
from accounts.services.monitoring import monitoring_start
from realtime.feed.deadman import ARMINGS_PER_COUNTDOWN, dead_mans_switch_plan
from realtime.tests.test_feed import eventually, run_feed
from risk.services.config import exchange_config_update

pytestmark = [pytest.mark.django_db(transaction=True)]

COUNTDOWN = "/fapi/v1/countdownCancelAll"
COUNTDOWN_SECONDS = 5  # re-armed every 1.7 s: a loaded test machine stalls the feed for a second or two


@pytest.fixture
def watched_binance(binance_server, make_exchange_account, trader, officer):
    """A monitored Binance account with a resting order, its exchange's switch set."""
    account = make_exchange_account(trader, "binanceusdm")
    exchange_config_update(actor=officer, exchange="binanceusdm", dead_mans_switch_seconds=COUNTDOWN_SECONDS)
    monitoring_start(exchanges=["binanceusdm"], symbols=["BTCUSDT"])
    order = binance_server.add_open_order("BTCUSDT", "BUY", "0.1", price=50000)
    return account, order


def test_the_feed_keeps_the_switch_armed_and_once_it_stops_the_venue_cancels_the_open_orders(
    binance_server, watched_binance
):
    _, order = watched_binance

    async def body(feed):
        await eventually(lambda: binance_server.countdown_armed("BTCUSDT"), message="the switch armed")
        # Re-armed before it runs out: these calls span more than one countdown.
        await eventually(
            lambda: len(binance_server.requests_to(COUNTDOWN)) >= ARMINGS_PER_COUNTDOWN + 2,
            timeout=COUNTDOWN_SECONDS * 4,
            message="the switch re-armed",
        )
        assert binance_server.countdown_cancellations == [] and order["status"] == "NEW"

    asyncio.run(run_feed(body))
    request = binance_server.requests_to(COUNTDOWN)[-1]
    assert request.signed and request.params["symbol"] == "BTCUSDT"
    assert request.params["countdownTime"] == str(COUNTDOWN_SECONDS * 1000)

    async def cancelled():
        await eventually(lambda: order["status"] == "CANCELED", timeout=COUNTDOWN_SECONDS * 3, message="the venue")

    asyncio.run(cancelled())  # the feed is gone: the venue acted by itself
    assert binance_server.countdown_cancellations == ["BTCUSDT"]


def test_the_switch_is_off_on_paper(paper_account, officer):
    """Paper has no switch: the setting is kept (a desk may configure every exchange
    alike) and nothing is armed."""
    monitoring_start(exchanges=["paper"], symbols=["BTCUSDT"])
    exchange_config_update(actor=officer, exchange="paper", dead_mans_switch_seconds=30)
    assert dead_mans_switch_plan() == []

    async def arm():
        async with exchange_open("paper", account_id=paper_account.pk) as exchange:
            assert not exchange.has_dead_mans_switch
            await exchange.dead_mans_switch_arm("BTCUSDT", 30)

    with pytest.raises(ExchangeNotSupported):
        asyncio.run(arm())


def test_the_switch_is_off_when_the_exchange_config_does_not_set_it(binance_server, make_exchange_account, trader):
    make_exchange_account(trader, "binanceusdm")
    monitoring_start(exchanges=["binanceusdm"], symbols=["BTCUSDT"])
    assert dead_mans_switch_plan() == []


def test_a_failure_to_arm_is_logged_and_retried_and_the_feed_goes_on(binance_server, watched_binance, caplog):
    binance_server.fail_next(status=503, path=COUNTDOWN, times=2)
    caplog.set_level(logging.WARNING, logger="realtime.feed")

    async def body(feed):
        await eventually(
            lambda: any("not armed, retrying" in r.getMessage() for r in caplog.records), message="the failure logged"
        )
        await eventually(lambda: binance_server.countdown_armed("BTCUSDT"), timeout=10, message="armed after all")
        await eventually(lambda: any("armed again" in r.getMessage() for r in caplog.records), message="the recovery")

    asyncio.run(run_feed(body))
    failures = [r for r in caplog.records if "not armed, retrying" in r.getMessage()]
    assert len(failures) == 1  # once per failing spell, not once per try
