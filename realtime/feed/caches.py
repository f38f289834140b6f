"""The feed's caches writer: the price and market-data caches (SPEC §8) take the latest
tickers and trades of each batch on a thread of their own (three Redis round trips a
venue), conflated while a write is under way and for `WRITE_EVERY_SECONDS` after it
(latest wins), so that writing them never lengthens the batch a crossing tick waits
behind. Written back to back, they took as much of the process's one GIL as the
evaluation itself (bench/feed.py: 2.2 s of CPU in a 12 s run); four writes a second
keep a cached price at most a quarter of a second behind the stream."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

from realtime.feed.marks import RECENT_TRADES
from realtime.services.market_data import market_caches_put

WRITE_EVERY_SECONDS = 0.25


class CachesWriter:
    def __init__(self):
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feed-caches")
        self.pending: dict = {}  # {(exchange, symbol): (Ticker, [Trade] or None)}
        self.ready = asyncio.Event()

    def put(self, drained) -> None:
        """A batch's tickers and trades (`marks.Drained`), merged with what waits: the
        newest RECENT_TRADES of a market's trades since the last write."""
        for market, ticker in drained.tickers.items():
            kept = self.pending[market][1] if market in self.pending else None
            new = drained.trades.get(market)
            self.pending[market] = (ticker, (kept + new)[-RECENT_TRADES:] if kept and new else new or kept)
        if self.pending:
            self.ready.set()

    @staticmethod
    def write(pending: dict) -> None:
        venues: dict = {}
        for (exchange, symbol), (ticker, trades) in pending.items():
            tickers, recent = venues.setdefault(exchange, ({}, {}))
            tickers[symbol] = ticker
            if trades:
                recent[symbol] = trades
        for exchange, (tickers, trades) in venues.items():
            market_caches_put(exchange=exchange, tickers=tickers, trades=trades)

    async def run(self, run_in, *, ok, failed) -> None:
        """Write what is pending whenever something is; `run_in(function, *args,
        executor=...)` runs it on the writer's thread; `ok`/`failed` report the outcome.
        On failure the latest is kept for the next round (the caches are a convenience:
        evaluation never waits for them)."""
        while True:
            await self.ready.wait()
            self.ready.clear()
            pending, self.pending = self.pending, {}
            try:
                await run_in(self.write, pending, executor=self.executor)
                ok("writing the caches")
                await asyncio.sleep(WRITE_EVERY_SECONDS)
            except Exception as error:
                failed("writing the caches", error)
                self.pending = {**pending, **self.pending}
                await asyncio.sleep(1)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
