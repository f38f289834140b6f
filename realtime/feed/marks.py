"""Marks the feed trusts (SPEC §5): a mark that jumps more than a share of the previous
one is held until a second tick confirms it, so one bad print never closes a
position; and ticks that come faster than evaluation are conflated per market."""

import asyncio
from dataclasses import dataclass
from decimal import Decimal


class MarkGuard:
    """Per market: accept a mark within `max_jump` (a share, 0.10 = 10 %) of the last
    accepted one; hold a bigger jump until the next tick lands within `max_jump` of it
    (confirmed) — or of the last accepted mark (the jump was a bad print)."""

    def __init__(self, max_jump: Decimal):
        self.max_jump = Decimal(max_jump)
        self.accepted: dict = {}
        self.held: dict = {}

    def _near(self, price: Decimal, reference: Decimal) -> bool:
        return reference > 0 and abs(price - reference) <= reference * self.max_jump

    def accept(self, market, price: Decimal) -> Decimal | None:
        """The mark to use for this tick of `market`, or None while a jump is held."""
        last = self.accepted.get(market)
        held = self.held.pop(market, None)
        if last is None or self._near(price, last) or (held is not None and self._near(price, held)):
            self.accepted[market] = price
            return price
        self.held[market] = price
        return None


class MarkBatch:
    """The marks waiting for evaluation: the latest per market (conflated: latest wins)
    plus the lowest and highest price seen since the last drain, so price alerts see
    every crossing however many ticks were conflated. Bounded by the number of
    markets, never by the tick rate."""

    def __init__(self, *, recent_trades: int = 20):
        self.latest: dict = {}  # {(exchange, symbol): (price, at)}
        self.tickers: dict = {}  # {(exchange, symbol): the latest Ticker} for the caches
        self.trades: dict = {}  # {(exchange, symbol): [Trade], newest last} since the last drain
        self.ranges: dict = {}  # {(exchange, symbol): (low, high, at of the extreme last seen)}
        self.ready = asyncio.Event()
        self.conflated = 0
        self.recent_trades = recent_trades

    def put(self, market, *, price: Decimal, mark: Decimal | None, at, ticker=None) -> None:
        """A tick of `market` at `price`, with the mark the guard accepted (None: held)."""
        if ticker is not None:
            self.tickers[market] = ticker
        if mark is not None:
            if market in self.latest:
                self.conflated += 1
            self.latest[market] = (mark, at)
        low, high, _ = self.ranges.get(market, (price, price, at))
        self.ranges[market] = (min(low, price), max(high, price), at)
        self.ready.set()

    def mark_put(self, market, *, mark: Decimal, at) -> None:
        """A mark from the venue's own mark prices (not a trade price: no price alert)."""
        if market in self.latest:
            self.conflated += 1
        self.latest[market] = (mark, at)
        self.ready.set()

    def trades_put(self, market, trades: list) -> None:
        kept = self.trades.setdefault(market, [])
        kept.extend(trades)
        del kept[: -self.recent_trades]

    def drain(self) -> "Drained":
        """What came since the last drain."""
        drained = Drained(latest=self.latest, ranges=self.ranges, tickers=self.tickers, trades=self.trades)
        self.latest, self.ranges, self.tickers, self.trades = {}, {}, {}, {}
        self.ready.clear()
        return drained


@dataclass(slots=True)
class Drained:
    latest: dict  # {market: (mark, at)}: the latest accepted mark
    ranges: dict  # {market: (low, high, at)}: every price, for price alerts
    tickers: dict  # {market: Ticker}: the latest, for the caches
    trades: dict  # {market: [Trade]}: the recent ones, for the market-data cache
