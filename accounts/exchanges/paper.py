"""The exchange interface for `paper`: seeded random-walk prices, books in the database.

Market data is computed from the walk (`paper_prices`), so every process sees the same
prices without talking to each other; account data comes from the paper books kept by
`accounts.services.paper` (reached through `sync_to_async`: this class is async like
every exchange, its storage is the ORM).
"""

import asyncio
import hashlib
import time
from datetime import UTC, datetime
from decimal import Decimal

from asgiref.sync import sync_to_async
from django.utils import timezone

from accounts.exchanges import config
from accounts.exchanges.base import (
    BUY,
    LONG,
    SELL,
    SHORT,
    BalanceInfo,
    Exchange,
    FundingPayment,
    Mark,
    OpenOrder,
    OrderBook,
    OrderResult,
    PositionInfo,
    Ticker,
    Trade,
    order_status,
)
from accounts.exchanges.errors import MissingCredentials, OrderRejected
from accounts.exchanges.symbols import SymbolMap

_DAY = 24 * 3600
_STATS_SAMPLES = 96  # 24 h high/low/open sampled every 15 minutes, plus now


def _unit(*key) -> float:
    digest = hashlib.blake2b(":".join(map(str, key)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0**64


def _at(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, tz=UTC)


class PaperExchange(Exchange):
    exchange_id = "paper"

    def __init__(self, *, account_id: int | None = None):
        self.account_id = account_id
        self._symbol_map: SymbolMap | None = None
        self._last_tick: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"PaperExchange(account_id={self.account_id})"

    async def close(self) -> None:
        self._symbol_map = None

    def _account(self) -> int:
        if self.account_id is None:
            raise MissingCredentials("The paper exchange needs an account for this operation.", exchange="paper")
        return self.account_id

    async def _quotes(self):
        from accounts.services.paper import paper_markets

        return await sync_to_async(paper_markets)()

    async def load_markets(self) -> SymbolMap:
        if self._symbol_map is None:
            quotes = await self._quotes()
            markets = {
                f"{quote.spec.base}/{quote.spec.quote}:{quote.spec.quote}": {
                    "symbol": f"{quote.spec.base}/{quote.spec.quote}:{quote.spec.quote}",
                    "base": quote.spec.base,
                    "quote": quote.spec.quote,
                    "settle": quote.spec.quote,
                    "swap": True,
                    "linear": True,
                    "spot": False,
                    "active": True,
                }
                for quote in quotes.values()
            }
            self._symbol_map = SymbolMap(self.exchange_id, markets)
        return self._symbol_map

    async def _quote(self, symbol: str):
        symbol_map = await self.load_markets()
        name = symbol_map.etrms(symbol_map.unified(symbol))
        return (await self._quotes())[name]

    # --- account ---------------------------------------------------------------------
    async def _state(self) -> tuple[BalanceInfo, list[PositionInfo]]:
        from accounts.services.paper import paper_account_state

        return await sync_to_async(paper_account_state)(account_id=self._account())

    async def fetch_balance(self, positions: list[PositionInfo] | None = None) -> BalanceInfo:
        return (await self._state())[0]

    async def fetch_positions(self, symbols: list[str] | None = None) -> list[PositionInfo]:
        positions = (await self._state())[1]
        if symbols:
            symbol_map = await self.load_markets()
            wanted = {symbol_map.etrms(symbol_map.unified(symbol)) for symbol in symbols}
            positions = [position for position in positions if position.symbol in wanted]
        return positions

    async def fetch_my_trades(self, symbol: str, since: datetime | None = None, limit: int = 500) -> list[Trade]:
        from accounts.services.paper import paper_fills

        name = (await self._quote(symbol)).spec.symbol
        return await sync_to_async(paper_fills)(account_id=self._account(), symbol=name, since=since, limit=limit)

    async def fetch_funding_payments(self, symbol: str, since: datetime | None = None) -> list[FundingPayment]:
        await self._quote(symbol)
        return []  # paper charges no funding

    async def create_reduce_only_market_order(
        self, symbol: str, side: str, amount: Decimal, *, client_order_id: str, hedged: bool = False
    ) -> OrderResult:
        from accounts.services.paper import paper_order_execute

        if side not in (BUY, SELL):
            raise OrderRejected(f"Unknown order side {side!r}.", exchange="paper")
        name = (await self._quote(symbol)).spec.symbol
        order = await sync_to_async(paper_order_execute)(
            account_id=self._account(),
            symbol=name,
            side=side,
            amount=amount,
            reduce_only=True,
            # In hedge mode a sell reduces the long, a buy the short.
            position_side=(LONG if side == SELL else SHORT) if hedged else None,
            client_order_id=client_order_id,
        )
        return OrderResult(
            id=str(order.pk),
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            amount=order.amount,
            filled=order.filled,
            average_price=order.average_price,
            # Paper fills market orders at once at the mark: `filled` unless a
            # reduce-only order was capped at a smaller position.
            status=order_status(status=order.status, amount=order.amount, filled=order.filled),
            reduce_only=order.reduce_only,
        )

    async def fetch_open_orders(self, symbol: str) -> list[OpenOrder]:
        from accounts.services.paper import paper_open_orders

        name = (await self._quote(symbol)).spec.symbol
        return await sync_to_async(paper_open_orders)(account_id=self._account(), symbol=name)

    async def cancel_all_orders(self, symbol: str) -> int | None:
        from accounts.services.paper import paper_orders_cancel_all

        name = (await self._quote(symbol)).spec.symbol
        return await sync_to_async(paper_orders_cancel_all)(account_id=self._account(), symbol=name)

    # --- market data -----------------------------------------------------------------
    def _ticker(self, quote, now: float) -> Ticker:
        last = quote.price_at(now)
        samples = [quote.price_at(now - _DAY + index * _DAY / _STATS_SAMPLES) for index in range(_STATS_SAMPLES)]
        samples.append(last)
        opening = samples[0]
        spread = quote.spec.tick_size
        tick = int(now // config.paper_tick_seconds())
        volume = Decimal(str(round(1000 + 9000 * _unit(quote.spec.symbol, "volume", tick // 3600), 3)))
        return Ticker(
            symbol=quote.spec.symbol,
            last=last,
            bid=last - spread,
            ask=last + spread,
            high=max(samples),
            low=min(samples),
            open=opening,
            volume=volume,
            quote_volume=(volume * last).quantize(Decimal("0.01")),
            change_pct=((last - opening) / opening * 100).quantize(Decimal("0.0001")),
            timestamp=_at(now),
        )

    async def fetch_ticker(self, symbol: str) -> Ticker:
        return self._ticker(await self._quote(symbol), time.time())

    async def fetch_marks(self, symbols: list[str]) -> dict[str, Mark]:
        quotes = {symbol: await self._quote(symbol) for symbol in symbols}
        now = time.time()
        marks = {symbol: quote.price_at(now) for symbol, quote in quotes.items()}
        received_at = timezone.now()
        return {symbol: Mark(symbol=symbol, price=price, received_at=received_at) for symbol, price in marks.items()}

    async def fetch_order_book(self, symbol: str, limit: int = 20) -> OrderBook:
        quote = await self._quote(symbol)
        now = time.time()
        mid = quote.price_at(now)
        step = max(quote.spec.tick_size, (mid * Decimal("0.0001")).quantize(quote.spec.tick_size))
        tick = int(now // config.paper_tick_seconds())

        def size(side: str, level: int) -> Decimal:
            units = 1 + int(40 * _unit(quote.spec.symbol, side, tick, level))
            return quote.spec.step_size * units * 10

        bids = [(mid - step * (level + 1), size("bid", level)) for level in range(limit)]
        asks = [(mid + step * (level + 1), size("ask", level)) for level in range(limit)]
        return OrderBook(symbol=quote.spec.symbol, bids=bids, asks=asks, timestamp=_at(now))

    def _trades_of_tick(self, quote, tick: int) -> list[Trade]:
        tick_seconds = config.paper_tick_seconds()
        price = quote.price_at(tick * tick_seconds)
        previous = quote.price_at((tick - 1) * tick_seconds)
        side = BUY if price >= previous else SELL
        count = 1 + int(3 * _unit(quote.spec.symbol, "count", tick))
        return [
            Trade(
                symbol=quote.spec.symbol,
                id=f"{tick}-{index}",
                price=price,
                amount=quote.spec.step_size * (1 + int(50 * _unit(quote.spec.symbol, "amount", tick, index))),
                side=side,
                timestamp=_at(tick * tick_seconds + index * tick_seconds / count),
            )
            for index in range(count)
        ]

    async def fetch_trades(self, symbol: str, limit: int = 50) -> list[Trade]:
        quote = await self._quote(symbol)
        tick = int(time.time() // config.paper_tick_seconds())
        trades: list[Trade] = []
        while len(trades) < limit:
            trades[:0] = self._trades_of_tick(quote, tick)
            tick -= 1
        return trades[-limit:]

    # --- streams: one update per tick --------------------------------------------------
    async def _next_tick(self, key: str) -> int:
        tick_seconds = config.paper_tick_seconds()
        current = int(time.time() // tick_seconds)
        if self._last_tick.get(key) is not None and self._last_tick[key] >= current:
            await asyncio.sleep((current + 1) * tick_seconds - time.time() + 0.001)
            current = int(time.time() // tick_seconds)
        self._last_tick[key] = current
        return current

    async def watch_ticker(self, symbol: str) -> Ticker:
        quote = await self._quote(symbol)
        tick = await self._next_tick(f"ticker:{quote.spec.symbol}")
        return self._ticker(quote, max(time.time(), tick * config.paper_tick_seconds()))

    async def watch_trades(self, symbol: str) -> list[Trade]:
        quote = await self._quote(symbol)
        tick = await self._next_tick(f"trades:{quote.spec.symbol}")
        return self._trades_of_tick(quote, tick)
