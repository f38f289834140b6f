"""One venue's market data for the feed: a task per (symbol, stream) over the exchange
interface (`watch_ticker` / `watch_trades`: ccxt.pro streams, the paper generator),
falling back to REST polling (`fetch_ticker` / `fetch_trades`) while the stream keeps
failing, reconnecting with exponential backoff and jitter. One venue failing never
stops another: each has its own client and tasks."""

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from accounts.exchanges import ExchangeError, UnknownSymbol, exchange_open
from accounts.exchanges import config as exchange_config

logger = logging.getLogger("realtime.feed")

BACKOFF_START, BACKOFF_MAX = 0.5, 30.0
FAILURES_BEFORE_POLLING = 3
POLLING_SECONDS = 60.0  # how long to poll before trying the stream again
MARKS_SECONDS = 1.0  # how often a venue's own mark prices are read (one call for all symbols)


def backoff_delay(failures: int) -> float:
    """Exponential backoff with full jitter: 0.5 s, 1 s, 2 s ... capped at 30 s."""
    return random.uniform(0, min(BACKOFF_MAX, BACKOFF_START * 2 ** max(0, failures - 1)))


@dataclass
class VenueStatus:
    """What `GET /accounts/monitor/status` shows of a venue."""

    exchange: str
    state: str = "connecting"  # connecting | connected | polling | reconnecting
    ticks: int = 0
    last_tick_at: float | None = None
    last_error: str = ""
    last_error_at: float | None = None
    symbols: list = field(default_factory=list)
    _window: list = field(default_factory=list)  # tick times of the last few seconds

    def tick(self, now: float) -> None:
        self.ticks += 1
        self.last_tick_at = now
        self._window.append(now)

    def ticks_per_second(self, now: float, span: float = 5.0) -> float:
        self._window = [t for t in self._window if t > now - span]
        return round(len(self._window) / span, 2)

    def failed(self, message: str, now: float) -> None:
        self.last_error, self.last_error_at = message[:500], now

    def as_dict(self, now: float) -> dict:
        return {
            "exchange": self.exchange,
            "state": self.state,
            "symbols": self.symbols,
            "ticks": self.ticks,
            "ticks_per_second": self.ticks_per_second(now),
            "last_tick_at": iso_from_unix(self.last_tick_at),
            "last_error": self.last_error or None,
            "last_error_at": iso_from_unix(self.last_error_at),
        }


def iso_from_unix(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class VenueStreams:
    """The streams of one exchange. `on_ticker(exchange, ticker)`, `on_trades(exchange,
    trades)` and, where the venue publishes mark prices of its own, `on_marks(exchange,
    marks)` (every `MARKS_SECONDS`, all symbols in one call) are awaited for every
    update, in arrival order per stream."""

    def __init__(self, exchange: str, *, on_ticker, on_trades, on_marks):
        self.exchange = exchange
        self.status = VenueStatus(exchange=exchange)
        self.on_ticker, self.on_trades, self.on_marks = on_ticker, on_trades, on_marks
        self.tasks: dict = {}  # {(kind, symbol): task}; the marks task is ("marks", "*")
        self.client = None
        self.has_mark_prices = False  # known once the client is open

    async def _client(self):
        if self.client is None:
            self.client = exchange_open(self.exchange)
            await self.client.__aenter__()
            self.has_mark_prices = self.client.has_mark_prices
        return self.client

    def symbols_set(self, symbols: set) -> None:
        """Stream exactly `symbols` (tickers, trades and marks) from now on."""
        self.status.symbols = sorted(symbols)
        wanted = {(kind, symbol) for symbol in symbols for kind in ("ticker", "trades")}
        if symbols:
            wanted.add(("marks", "*"))
        for key in set(self.tasks) - wanted:
            self.tasks.pop(key).cancel()
        for key in wanted - set(self.tasks):
            self.tasks[key] = asyncio.create_task(self._run(*key), name=f"feed:{self.exchange}:{key[0]}:{key[1]}")

    async def close(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        self.tasks = {}
        if self.client is not None:
            try:
                await self.client.__aexit__(None, None, None)
            except Exception:
                logger.warning("Closing the %s client failed", self.exchange, exc_info=True)
            self.client = None

    async def _next(self, kind: str, symbol: str, polling: bool):
        client = await self._client()
        if kind == "marks":
            await asyncio.sleep(MARKS_SECONDS)
            return await client.fetch_marks(self.status.symbols) if client.has_mark_prices else None
        if polling:
            await asyncio.sleep(exchange_config.poll_seconds())
            return await (client.fetch_ticker(symbol) if kind == "ticker" else client.fetch_trades(symbol, limit=20))
        return await (client.watch_ticker(symbol) if kind == "ticker" else client.watch_trades(symbol))

    async def _run(self, kind: str, symbol: str) -> None:
        failures, polling_until, seen_trades = 0, 0.0, set()
        while True:
            polling = time.monotonic() < polling_until
            try:
                update = await self._next(kind, symbol, polling)
            except asyncio.CancelledError:
                raise
            except UnknownSymbol as error:
                self.status.failed(f"{symbol}: {error}", time.time())
                logger.warning("Feed: %s does not list %s; not streaming it", self.exchange, symbol)
                return
            except Exception as error:  # a venue error, a dropped stream, a bug in a handler: log, back off, resume
                failures += 1
                message = str(getattr(error, "detail", "") or error) or type(error).__name__
                self.status.failed(f"{kind} {symbol}: {message}", time.time())
                self.status.state = "reconnecting"
                if failures == 1 or failures % 20 == 0:
                    level = logging.WARNING if isinstance(error, ExchangeError) else logging.ERROR
                    logger.log(
                        level, "Feed: %s %s %s failed (%d in a row): %s", self.exchange, kind, symbol, failures, message
                    )
                if failures >= FAILURES_BEFORE_POLLING and not polling:
                    polling_until = time.monotonic() + POLLING_SECONDS
                await asyncio.sleep(backoff_delay(failures))
                continue
            failures = 0
            if kind == "marks":
                if update is None:
                    return  # the venue has no mark prices of its own: tickers mark positions
                await self.on_marks(self.exchange, update)
                continue
            self.status.state = "polling" if polling else "connected"
            if kind == "ticker":
                self.status.tick(time.time())
                await self.on_ticker(self.exchange, update)
            else:
                fresh = [trade for trade in update if trade.id not in seen_trades]
                seen_trades = {trade.id for trade in update}
                if fresh:
                    await self.on_trades(self.exchange, fresh)
