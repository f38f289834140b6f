"""Marks the feed trusts (SPEC §5): a mark that jumps more than a share of the previous
one is held until a second tick confirms it, so one bad print never closes a
position; and ticks that come faster than evaluation are conflated per market."""

import asyncio
import itertools
import time
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
    markets, never by the tick rate.

    A drain takes the markets whose mark may cross a level (`urgent`: outside the risk
    index's quiet prices) first, else the markets waiting longest up to a budget: a
    crossing waits for one short batch, not for the whole desk's. Ordinary markets wait
    at most `ordinary_wait` seconds behind urgent ones, so a flood of urgent ticks (the
    whole desk moving at once) never starves them."""

    def __init__(self, *, recent_trades: int = 20, ordinary_wait: float = 0.05):
        self.latest: dict = {}  # {(exchange, symbol): (price, at)}
        self.tickers: dict = {}  # {(exchange, symbol): the latest Ticker} for the caches
        self.trades: dict = {}  # {(exchange, symbol): [Trade], newest last} since the last drain
        self.ranges: dict = {}  # {(exchange, symbol): (low, high, at of the extreme last seen)}
        self.urgent: dict = {}  # {market: None}, in arrival order: markets of `latest` to evaluate first
        self.ordinary_wait = ordinary_wait
        self.ordinary_at = time.monotonic()  # when the last ordinary drain was taken
        self.ready = asyncio.Event()
        self.conflated = 0
        self.recent_trades = recent_trades

    def put(self, market, *, price: Decimal, mark: Decimal | None, at, ticker=None, urgent: bool = False) -> None:
        """A tick of `market` at `price`, with the mark the guard accepted (None: held)."""
        if ticker is not None:
            self.tickers[market] = ticker
        if mark is not None:
            self._latest_put(market, mark, at, urgent)
        low, high, _ = self.ranges.get(market, (price, price, at))
        self.ranges[market] = (min(low, price), max(high, price), at)
        self.ready.set()

    def mark_put(self, market, *, mark: Decimal, at, urgent: bool = False) -> None:
        """A mark from the venue's own mark prices (not a trade price: no price alert)."""
        self._latest_put(market, mark, at, urgent)
        self.ready.set()

    def _latest_put(self, market, mark: Decimal, at, urgent: bool) -> None:
        if market in self.latest:
            self.conflated += 1
        self.latest[market] = (mark, at)
        if urgent:
            self.urgent[market] = None

    def trades_put(self, market, trades: list) -> None:
        kept = self.trades.setdefault(market, [])
        kept.extend(trades)
        del kept[: -self.recent_trades]

    def drain(self, *, budget: int | None = None, weight=None) -> "Drained":
        """What came since the last drain: the urgent markets first, then the markets
        waiting longest, until their `weight(market)` adds up to `budget` (everything
        without a budget). Tickers and trades go whole: the caches keep only the latest."""
        now = time.monotonic()
        waiting = self.latest.keys() | self.ranges.keys()
        ordinary_due = now - self.ordinary_at >= self.ordinary_wait and not waiting <= self.urgent.keys()
        take_urgent = bool(self.urgent) and not ordinary_due
        if not take_urgent:
            self.ordinary_at = now
        if budget is None:
            latest, ranges = self.latest, self.ranges
            self.latest, self.ranges, self.urgent = {}, {}, {}
        else:
            markets = _within(self.urgent if take_urgent else itertools.chain(self.ranges, self.latest), budget, weight)
            latest = {market: self.latest.pop(market) for market in markets if market in self.latest}
            ranges = {market: self.ranges.pop(market) for market in markets if market in self.ranges}
            for market in latest.keys() & self.urgent.keys():
                del self.urgent[market]
        drained = Drained(latest=latest, ranges=ranges, tickers=self.tickers, trades=self.trades)
        self.tickers, self.trades = {}, {}
        if not self.latest and not self.ranges:
            self.ready.clear()
        return drained


def _within(markets, budget: int, weight) -> dict:
    """The first of `markets` (in order, once each) until their weights reach `budget`;
    at least one."""
    taken, spent = {}, 0
    for market in markets:
        if market in taken:
            continue
        if taken and spent >= budget:
            break
        taken[market] = None
        spent += weight(market)
    return taken


@dataclass(slots=True)
class Drained:
    latest: dict  # {market: (mark, at)}: the latest accepted mark
    ranges: dict  # {market: (low, high, at)}: every price, for price alerts
    tickers: dict  # {market: Ticker}: the latest, for the caches
    trades: dict  # {market: [Trade]}: the recent ones, for the market-data cache
