"""The one exchange interface, run against the local Binance server (real ccxt code,
signed requests) and against the paper exchange: same calls, same answers."""

import asyncio
from dataclasses import dataclass
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from accounts.exchanges import (
    LONG,
    SHORT,
    Exchange,
    OrderRejected,
    UnknownExchange,
    UnknownSymbol,
    exchange_open,
    is_known_exchange,
)
from accounts.services.exchange_accounts import account_exchange

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _close_executor_connections():
    """The paper exchange reaches the ORM through sync_to_async's shared thread: close
    that thread's connection, or PostgreSQL cannot drop the test database."""
    yield
    await sync_to_async(connections.close_all)()


@dataclass
class Venue:
    name: str
    open: object  # () -> Exchange
    set_price: object  # (symbol, price) -> None, sync
    add_open_order: object  # (symbol, side, amount, price) -> None, sync
    server: object = None


@pytest.fixture(params=["binanceusdm", "paper"])
def venue(request, make_exchange_account, trader):
    """A venue with BTC 60,000 / ETH 3,000, a 0.5 BTC long and a 2 ETH short."""
    if request.param == "binanceusdm":
        server = request.getfixturevalue("binance_server")
        account = make_exchange_account(trader, "binanceusdm")
        server.set_price("BTCUSDT", 60000)
        server.set_price("ETHUSDT", 3000)
        server.fill("BTCUSDT", "BUY", "0.5")
        server.fill("ETHUSDT", "SELL", "2")
        return Venue(
            "binanceusdm",
            lambda: account_exchange(account),
            server.set_price,
            lambda symbol, side, amount, price: server.add_open_order(symbol, side.upper(), amount, price=price),
            server,
        )
    from accounts.services.paper import paper_order_execute, paper_price_set

    account = make_exchange_account(trader, "paper", paper_balance=Decimal(10000))
    paper_price_set(symbol="BTCUSDT", price=Decimal(60000))
    paper_price_set(symbol="ETHUSDT", price=Decimal(3000))
    paper_order_execute(account_id=account.pk, symbol="BTCUSDT", side="buy", amount=Decimal("0.5"))
    paper_order_execute(account_id=account.pk, symbol="ETHUSDT", side="sell", amount=Decimal(2))

    def add_open_order(symbol, side, amount, price):
        paper_order_execute(
            account_id=account.pk, symbol=symbol, side=side, amount=Decimal(amount), type="limit", price=Decimal(price)
        )

    return Venue(
        "paper",
        lambda: account_exchange(account),
        lambda symbol, price: paper_price_set(symbol=symbol, price=Decimal(str(price))),
        add_open_order,
    )


async def test_markets_list_the_symbols_and_unknown_ones_cost_no_call(venue):
    async with venue.open() as exchange:
        assert isinstance(exchange, Exchange)
        assert {"BTCUSDT", "ETHUSDT", "SOLUSDT"} <= set(await exchange.symbols())
        assert await exchange.check_symbol("btc/usdt") == "BTCUSDT"
        calls = len(venue.server.requests) if venue.server else 0
        with pytest.raises(UnknownSymbol) as caught:
            await exchange.fetch_ticker("DOGEUSDT")
        assert caught.value.status_code == 404
        if venue.server:
            assert len(venue.server.requests) == calls  # decided from the loaded markets


async def test_ticker_order_book_and_trades(venue):
    async with venue.open() as exchange:
        ticker = await exchange.fetch_ticker("BTCUSDT")
        assert ticker.symbol == "BTCUSDT" and ticker.last == Decimal(60000)
        assert ticker.timestamp.tzinfo is not None
        book = await exchange.fetch_order_book("ETHUSDT", limit=5)
        assert len(book.bids) == len(book.asks) == 5
        assert book.bids[0][0] < Decimal(3000) < book.asks[0][0]
        assert [price for price, _ in book.bids] == sorted((price for price, _ in book.bids), reverse=True)
        trades = await exchange.fetch_trades("BTCUSDT", limit=3)
        assert 1 <= len(trades) <= 3
        assert all(trade.symbol == "BTCUSDT" and trade.price > 0 and trade.side in ("buy", "sell") for trade in trades)


async def test_positions_and_balance(venue):
    await sync_to_async(venue.set_price)("BTCUSDT", 61000)
    await sync_to_async(venue.set_price)("ETHUSDT", 2900)
    async with venue.open() as exchange:
        positions = {position.symbol: position for position in await exchange.fetch_positions()}
        assert set(positions) == {"BTCUSDT", "ETHUSDT"}
        btc, eth = positions["BTCUSDT"], positions["ETHUSDT"]
        assert (btc.side, btc.size, btc.entry_price, btc.mark_price) == (LONG, Decimal("0.5"), 60000, 61000)
        assert btc.unrealized_pnl == Decimal(500)
        assert btc.notional == Decimal(30500)
        assert btc.leverage == 10
        assert btc.liquidation_price is not None and btc.liquidation_price < Decimal(61000)
        assert (eth.side, eth.size, eth.unrealized_pnl) == (SHORT, Decimal(2), Decimal(200))
        assert eth.liquidation_price > Decimal(2900)
        only_btc = await exchange.fetch_positions(["BTCUSDT"])
        assert [position.symbol for position in only_btc] == ["BTCUSDT"]

        balance = await exchange.fetch_balance(positions=list(positions.values()))
        assert balance.unrealized_pnl == Decimal(700)
        assert balance.equity == balance.balance + Decimal(700)
        assert balance.margin_used == (Decimal(30500) + Decimal(5800)) / 10
        assert balance.available == balance.equity - balance.margin_used
        assert balance.margin_ratio == balance.maintenance_margin / balance.equity > 0


async def test_reduce_only_orders_reduce_close_and_never_flip(venue):
    async with venue.open() as exchange:
        order = await exchange.create_reduce_only_market_order(
            "BTCUSDT", "sell", Decimal("0.2"), client_order_id="breaker-1-pos-1"
        )
        assert (order.filled, order.average_price, order.status) == (Decimal("0.2"), Decimal(60000), "filled")
        assert order.fully_filled
        again = await exchange.create_reduce_only_market_order(
            "BTCUSDT", "sell", Decimal("0.2"), client_order_id="breaker-1-pos-1"
        )
        assert again.id == order.id  # the retry acted once
        positions = {position.symbol: position for position in await exchange.fetch_positions()}
        assert positions["BTCUSDT"].size == Decimal("0.3")

        # A reduce-only buy on a long is refused: it would grow nothing and flip nothing.
        with pytest.raises(OrderRejected):
            await exchange.create_reduce_only_market_order("BTCUSDT", "buy", Decimal("0.1"), client_order_id="x-2")
        with pytest.raises(OrderRejected):
            await exchange.create_reduce_only_market_order("SOLUSDT", "sell", Decimal(1), client_order_id="x-3")

        await sync_to_async(venue.set_price)("ETHUSDT", 2800)
        await exchange.create_reduce_only_market_order("ETHUSDT", "buy", Decimal(2), client_order_id="close-eth")
        positions = {position.symbol: position for position in await exchange.fetch_positions()}
        assert "ETHUSDT" not in positions

        fills = await exchange.fetch_my_trades("ETHUSDT")
        closing = fills[-1]
        assert (closing.side, closing.amount, closing.price) == ("buy", Decimal(2), Decimal(2800))
        assert closing.realized_pnl == Decimal(400)  # (3000 - 2800) x 2
        assert closing.fee == Decimal(2) * Decimal(2800) * Decimal("0.0004")
        assert await exchange.fetch_funding_payments("ETHUSDT") == []


async def test_cancel_all_orders_for_a_symbol(venue):
    await sync_to_async(venue.add_open_order)("SOLUSDT", "buy", "1", "100")
    await sync_to_async(venue.add_open_order)("SOLUSDT", "buy", "1", "90")
    await sync_to_async(venue.add_open_order)("BTCUSDT", "buy", "0.01", "50000")
    async with venue.open() as exchange:
        assert await exchange.cancel_all_orders("SOLUSDT") == 2
        assert await exchange.cancel_all_orders("SOLUSDT") == 0
        assert await exchange.cancel_all_orders("BTCUSDT") == 1


async def test_watch_ticker_streams_the_new_price(venue):
    async with venue.open() as exchange:
        first = await asyncio.wait_for(exchange.watch_ticker("BTCUSDT"), 5)
        assert first.last == Decimal(60000)
        await sync_to_async(venue.set_price)("BTCUSDT", 60500)
        for _ in range(20):
            ticker = await asyncio.wait_for(exchange.watch_ticker("BTCUSDT"), 5)
            if ticker.last == Decimal(60500):
                break
        assert ticker.last == Decimal(60500)
        trades = await asyncio.wait_for(asyncio.gather(exchange.watch_trades("BTCUSDT"), _push_trade_soon(venue)), 5)
        assert trades[0] and trades[0][0].symbol == "BTCUSDT"


async def _push_trade_soon(venue):
    await asyncio.sleep(0.3)
    if venue.server:
        venue.server.push_trade("BTCUSDT", 60510, "0.25", "buy")


def test_known_exchanges():
    assert is_known_exchange("paper") and is_known_exchange("binanceusdm") and is_known_exchange("hyperliquid")
    for name in ("nope", "base", "", "../x", "pro"):
        assert not is_known_exchange(name)
    with pytest.raises(UnknownExchange) as caught:
        exchange_open("nope")
    assert caught.value.status_code == 404
