"""Marks the feed trusts (SPEC §5): a mark that jumps more than a share of the previous
one is held until a second tick confirms it, so one bad print never closes a
position; and ticks that come faster than evaluation are conflated per market."""

import asyncio
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


ORDINARY_TURNS = 5  # batches of the markets waiting longest per `ordinary_wait`, at least
RECENT_TRADES = 20  # a market's newest trades kept for the market-data cache


class MarkBatch:
    """The marks waiting for evaluation: the latest per market (conflated: latest wins)
    plus the lowest and highest price seen since the last drain, so price alerts see
    every crossing however many ticks were conflated. Bounded by the number of
    markets, never by the tick rate.

    A drain takes the markets whose mark may cross a level (`urgent`: outside the risk
    index's quiet prices) first, else the markets waiting longest up to a budget: a
    crossing waits for one short batch, not for the whole desk's. Once a market has
    waited `ordinary_wait` seconds behind urgent ones, the markets waiting longest get a
    batch every `ordinary_wait / ORDINARY_TURNS` seconds until none has, and never two in
    a row while urgent markets wait: a flood of urgent ticks (a broad rally: every
    position at its peak) never starves the rest, whose crossings no price can flag
    (desk caps, volatility, time), and a crossing waits for at most one of their batches,
    however long a batch takes (when evaluation falls behind, batches alternate)."""

    def __init__(self, *, recent_trades: int = RECENT_TRADES, ordinary_wait: float = 0.05):
        self.latest: dict = {}  # {(exchange, symbol): (price, at)}
        self.tickers: dict = {}  # {(exchange, symbol): the latest Ticker} for the caches
        self.trades: dict = {}  # {(exchange, symbol): [Trade], newest last} since the last drain
        self.ranges: dict = {}  # {(exchange, symbol): (low, high, at of the extreme last seen)}
        self.waiting: dict = {}  # {market: monotonic time of its first tick since drained}, oldest first
        self.urgent: dict = {}  # {market: None}, in arrival order: waiting markets to evaluate first
        self.ordinary_wait = ordinary_wait
        self.ordinary_at = 0.0  # monotonic time of the last drain of the markets waiting longest
        self.ordinary_last = False  # whether the last budgeted drain was theirs
        self.ready = asyncio.Event()
        self.conflated = 0
        self.recent_trades = recent_trades

    def put(self, market, *, price: Decimal, mark: Decimal | None, at, ticker=None, urgent: bool = False) -> None:
        """A tick of `market` at `price`, with the mark the guard accepted (None: held)."""
        if ticker is not None:
            self.tickers[market] = ticker
        if mark is not None:
            self._latest_put(market, mark, at)
        low, high, _ = self.ranges.get(market, (price, price, at))
        self.ranges[market] = (min(low, price), max(high, price), at)
        self._arrived(market, urgent)

    def mark_put(self, market, *, mark: Decimal, at, urgent: bool = False) -> None:
        """A mark from the venue's own mark prices (not a trade price: no price alert)."""
        self._latest_put(market, mark, at)
        self._arrived(market, urgent)

    def _latest_put(self, market, mark: Decimal, at) -> None:
        if market in self.latest:
            self.conflated += 1
        self.latest[market] = (mark, at)

    def _arrived(self, market, urgent: bool) -> None:
        if market not in self.waiting:
            self.waiting[market] = time.monotonic()
        if urgent:
            self.urgent[market] = None
        self.ready.set()

    def urgent_again(self, urgent) -> None:
        """Flag the waiting markets whose latest mark `urgent(market, mark)` says may cross
        a level now: the levels they were judged against at arrival can change meanwhile
        (a crossing's evaluation writes an alert and its way back becomes a level)."""
        for market, (mark, _) in self.latest.items():
            if market not in self.urgent and urgent(market, mark):
                self.urgent[market] = None

    def trades_put(self, market, trades: list) -> None:
        kept = self.trades.setdefault(market, [])
        kept.extend(trades)
        del kept[: -self.recent_trades]

    def drain(self, *, budget: int | None = None, weight=None) -> "Drained":
        """What came since the last drain: the urgent markets first, then the markets
        waiting longest, until their `weight(market)` adds up to `budget` (everything
        without a budget). Tickers and trades go whole: the caches keep only the latest."""
        if budget is None:
            markets = self.waiting
        elif self._urgent_first():
            self.ordinary_last = False
            markets = _within(self.urgent, budget, weight)
        else:
            self.ordinary_at, self.ordinary_last = time.monotonic(), True
            markets = _within(self.waiting, budget, weight)
        latest = {market: self.latest.pop(market) for market in markets if market in self.latest}
        ranges = {market: self.ranges.pop(market) for market in markets if market in self.ranges}
        for market in list(markets):
            self.waiting.pop(market, None)
            self.urgent.pop(market, None)
        drained = Drained(latest=latest, ranges=ranges, tickers=self.tickers, trades=self.trades)
        self.tickers, self.trades = {}, {}
        if not self.waiting:
            self.ready.clear()
        return drained

    def _urgent_first(self) -> bool:
        """Whether this drain takes the urgent markets: some wait, and either the last
        drain was the markets waiting longest, or they had a batch in the last
        `ordinary_wait / ORDINARY_TURNS` seconds, or none of them (not urgent) has waited
        `ordinary_wait` yet."""
        if not self.urgent:
            return False
        now = time.monotonic()
        if self.ordinary_last or now - self.ordinary_at < self.ordinary_wait / ORDINARY_TURNS:
            return True
        since = next((since for market, since in self.waiting.items() if market not in self.urgent), now)
        return now - since < self.ordinary_wait


def _within(markets, budget: int, weight) -> dict:
    """The first of `markets` (in order) until their weights reach `budget`; at least one."""
    taken, spent = {}, 0
    for market in markets:
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
