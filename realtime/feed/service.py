"""The feed (SPEC §7, §11): what runs in `manage.py run_feed`.

On every tick, with nothing per subscriber:
1. the tick is PUBLISHed once on its Redis stream (`realtime.streams`), the frames of an
   event-loop turn in one script call (`realtime.feed.outbox`);
2. the mark guard accepts the mark (or holds a jump until a second tick confirms it)
   and the tick joins the next batch, conflated per market (latest wins), keeping the
   lowest and highest price since the last batch for price alerts.

One worker thread (`self.executor`) does what evaluation needs, in order, one batch
at a time: the risk index evaluates it (`RiskIndex.apply_marks`: marks in memory,
alerts and trips written and published at once), price alerts are checked against
each market's low and high, the index sweeps every user every two seconds (stale
venues, time-based breakers), and it reloads users whose positions, alerts or trips
changed in another process (Redis messages; the settings version comes the same way,
so a batch costs no round trip to learn it). Once a second the same thread persists the
marks the index moved, from its memory, in chunks of a few hundred rows: batches run
between the chunks, and no other thread of this process holds the database's write
lock while an alert waits for it. The caches take the latest tickers and trades on a
thread of their own (`realtime.feed.caches`): they never lengthen the batch a crossing
tick waits behind. A slow database delays the batches, which conflate; it
never blocks the stream.

Every loop survives a Redis or database outage: it logs once, waits, and resumes.
"""

import asyncio
import contextlib
import gc
import json
import logging
import math
import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from accounts.events import POSITIONS_CHANNEL
from accounts.selectors import monitored_markets
from accounts.services.monitoring import MONITORING_CHANNEL, feed_status_write
from etrms.kept_connections import connections_keep
from etrms.metrics import FEED_BATCHES, FEED_LAG, FEED_TICKS
from realtime.feed.caches import CachesWriter
from realtime.feed.deadman import DeadMansSwitch
from realtime.feed.marks import MarkBatch, MarkGuard
from realtime.feed.outbox import Outbox
from realtime.feed.venues import VenueStreams, iso_from_unix
from realtime.services.price_alert_index import price_alert_index, price_alerts_check_range
from realtime.streams import TICKER_CHANNEL, TRADES_CHANNEL, ticker_frame, trade_frame
from realtime.ws.demand import demanded_markets, markets_merge
from risk.publish import PROCESS_ORIGIN
from risk.publish import REDIS_ALERTS_CHANNEL as ALERTS_CHANNEL
from risk.services.hooks import INDEX_CHANNEL, index_version
from risk.services.index import RiskIndex, index_activate
from risk.services.index_writes import MARKS_CHUNK

logger = logging.getLogger("realtime.feed")

PERSIST_SECONDS = 1.0
SWEEP_SECONDS = 2.0
SWEEP_USERS = 10  # users a turn of the sweep evaluates (a full one took 53 ms for 100)
MARKETS_RELOAD_SECONDS = 10.0
STATUS_SECONDS = 1.0
SHUTDOWN_STEP_SECONDS = 10.0


def feed_process_tune() -> None:
    """Tune the process the feed runs in (its own). Its database thread keeps its
    connection between batches (`etrms.kept_connections`). It gives up the GIL
    on every query and Redis call and then waits for the event loop, busy with ticks,
    to hand it back, by default after 5 ms; a switch interval of 0.5 ms
    (FEED_SWITCH_INTERVAL_SECONDS) hands it back sooner. bench/alert_latency.py, same
    loaded machine, runs in turn: tick -> alert published p50 15.5 vs 17-22 ms, p99 59
    vs 100 ms."""
    sys.setswitchinterval(settings.FEED_SWITCH_INTERVAL_SECONDS)
    connections_keep()


class Feed:
    def __init__(
        self, *, redis_client, listener_client, max_mark_jump: Decimal | None = None, owns_process: bool = False
    ):
        self.redis = redis_client  # redis.asyncio clients on the platform database: commands,
        self.listener = listener_client  # and subscriptions (no read timeout)
        jump = max_mark_jump if max_mark_jump is not None else Decimal(str(settings.FEED_MAX_MARK_JUMP))
        self.guard = MarkGuard(jump)
        self.batch = MarkBatch()
        self.price_alerts = price_alert_index()  # its targets make a tick urgent too
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feed-db")
        self.caches = CachesWriter()
        self.index: RiskIndex | None = None
        self.venues: dict[str, VenueStreams] = {}
        self.closing: set = set()  # venues being closed
        self.outbox = Outbox()
        self.reload_users: set = set()
        self.markets_dirty = asyncio.Event()
        self.listening = asyncio.Event()  # set while subscribed to other processes' changes
        self.ticks = self.batches = 0
        self.started_at = time.time()
        self._failing: set = set()
        self.dead_mans_switch = DeadMansSwitch()  # the venues' countdownCancelAll (realtime.feed.deadman)
        self.owns_process = owns_process  # run_feed: the process is the feed's alone

    # --- the worker thread ----------------------------------------------------------------
    async def db(self, function, *args, executor=None, **kwargs):
        """Run `function` in the feed's database thread (in order with the others), or in
        `executor`."""

        def call():
            close_old_connections()
            return function(*args, **kwargs)

        return await asyncio.get_running_loop().run_in_executor(executor or self.executor, lambda: call())

    def _ok(self, what: str) -> None:
        if what in self._failing:
            self._failing.discard(what)
            logger.warning("Feed: %s works again", what)

    def _failed(self, what: str, error: Exception) -> None:
        if what not in self._failing:
            self._failing.add(what)
            logger.warning("Feed: %s failed, retrying: %s", what, error)

    # --- ticks ------------------------------------------------------------------------------
    async def on_ticker(self, exchange: str, ticker) -> None:
        """One ticker update of `exchange`. Its last price marks positions unless the
        venue publishes mark prices of its own (then `on_marks` does)."""
        self.ticks += 1
        FEED_TICKS.inc()
        self.outbox.put(TICKER_CHANNEL, ticker_frame(exchange=exchange, ticker=ticker))
        market = (exchange, ticker.symbol)
        venue = self.venues.get(exchange)
        mark = None if venue is not None and venue.has_mark_prices else self.guard.accept(market, ticker.last)
        urgent = self._urgent(market, mark) or self.price_alerts.reached(market, ticker.last)
        self.batch.put(market, price=ticker.last, mark=mark, at=ticker.timestamp, ticker=ticker, urgent=urgent)

    def _urgent(self, market, mark) -> bool:
        """Whether `mark` is outside the quiet prices of `market` (RiskIndex.quiet): it may
        cross a level, so its batch goes first."""
        quiet = self.index.quiet.get(market) if mark is not None and self.index is not None else None
        return quiet is not None and not quiet[0] < float(mark) < quiet[1]

    async def on_marks(self, exchange: str, marks: dict) -> None:
        """The venue's own mark prices ({symbol: accounts.exchanges.Mark})."""
        for symbol, mark in marks.items():
            market = (exchange, symbol)
            accepted = self.guard.accept(market, mark.price)
            if accepted is not None:
                self.batch.mark_put(market, mark=accepted, at=mark.received_at, urgent=self._urgent(market, accepted))

    async def on_trades(self, exchange: str, trades: list) -> None:
        for trade in trades:
            self.outbox.put(TRADES_CHANNEL, trade_frame(exchange=exchange, trade=trade))
        if trades:
            self.batch.trades_put((exchange, trades[0].symbol), trades)

    # --- loops ------------------------------------------------------------------------------
    def _positions_in(self, market) -> int:
        """A market's weight in a batch: its open positions, and one for its other work."""
        return 1 + len(self.index.by_market.get(market, ()))

    def _evaluate(self, drained) -> None:
        by_exchange: dict = {}
        for (exchange, symbol), (mark, at) in drained.latest.items():
            by_exchange.setdefault(exchange, {})[symbol] = (mark, at)
        for exchange, marks in by_exchange.items():
            self.index.apply_marks(
                exchange=exchange,
                prices_by_symbol={symbol: mark for symbol, (mark, _) in marks.items()},
                moments={symbol: moment for symbol, (_, moment) in marks.items()},
                at=max(moment for _, moment in marks.values()),
            )
        for (exchange, symbol), (low, high, at) in drained.ranges.items():
            price_alerts_check_range(exchange=exchange, symbol=symbol, low=low, high=high, at=at)

    async def _evaluation_loop(self) -> None:
        while True:
            await self.batch.ready.wait()
            drained = self.batch.drain(budget=settings.FEED_BATCH_POSITIONS, weight=self._positions_in)
            self.caches.put(drained)
            try:
                await self.db(self._evaluate, drained)
                self.batch.urgent_again(self._urgent)  # against the quiet prices it left
                self.batches += 1
                FEED_BATCHES.inc()
                stamps = [at for _, at in drained.latest.values() if at is not None]
                if stamps:
                    FEED_LAG.observe(max(0.0, time.time() - max(stamps).timestamp()))
                self._ok("evaluating ticks")
            except Exception as error:
                self._failed("evaluating ticks", error)
                logger.debug("evaluation failure", exc_info=True)
                await asyncio.sleep(1)

    async def _persist(self, *, until_empty: bool = False) -> None:
        """Write the marks the index moved until now, a chunk per turn of the database
        thread (tick batches queued meanwhile run between chunks), then its drawdown
        peaks. Marks moved during the round wait for the next one: a round never chases
        the stream (`until_empty`: at shutdown, when no tick comes any more)."""
        rounds = math.inf if until_empty else math.ceil(len(self.index.held.marks) / MARKS_CHUNK)
        while rounds > 0 and await self.db(self.index.held.marks_persist):
            rounds -= 1
        await self.db(self.index.held.peaks_flush)

    def _reload(self) -> None:
        users, self.reload_users = self.reload_users, set()
        if users:
            self.index.states_reload(list(users))

    async def _sweep(self) -> None:
        """The index's sweep, `SWEEP_USERS` users a turn of the database thread, each turn
        at its own time."""
        users = await self.db(self.index.sweep_due, now=timezone.now())
        for start in range(0, len(users), SWEEP_USERS):
            await self.db(self.index.sweep_turn, users[start : start + SWEEP_USERS])

    async def _timer_loop(self) -> None:
        last_sweep = 0.0
        while True:
            await asyncio.sleep(PERSIST_SECONDS)
            try:
                await self._persist()
                if self.reload_users:
                    await self.db(self._reload)
                if time.monotonic() - last_sweep >= SWEEP_SECONDS:
                    await self._sweep()
                    last_sweep = time.monotonic()
                self._ok("persisting marks")
            except Exception as error:
                self._failed("persisting marks", error)

    async def _markets_loop(self) -> None:
        while True:
            try:
                markets = await self.db(monitored_markets)
                try:  # what WebSocket subscribers ask for beyond monitoring (realtime.ws.demand)
                    markets = markets_merge(markets, await demanded_markets(self.redis))
                    self._ok("reading on-demand markets")
                except Exception as error:
                    self._failed("reading on-demand markets", error)
                self._markets_apply(markets)
                self._ok("reading monitored markets")
            except Exception as error:
                self._failed("reading monitored markets", error)
            self.markets_dirty.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.markets_dirty.wait(), timeout=MARKETS_RELOAD_SECONDS)

    def _markets_apply(self, markets: dict) -> None:
        for exchange in set(self.venues) - set(markets):
            venue = self.venues.pop(exchange)
            venue.symbols_set(set())
            self.closing.add(asyncio.create_task(venue.close()))
            self.closing = {task for task in self.closing if not task.done()}
        for exchange, symbols in markets.items():
            venue = self.venues.get(exchange)
            if venue is None:
                venue = self.venues[exchange] = VenueStreams(
                    exchange, on_ticker=self.on_ticker, on_trades=self.on_trades, on_marks=self.on_marks
                )
            venue.symbols_set(set(symbols))

    async def _messages_loop(self) -> None:
        """Changes made by other processes: monitoring, positions, alerts."""
        while True:
            pubsub = self.listener.pubsub()
            try:
                await pubsub.subscribe(MONITORING_CHANNEL, POSITIONS_CHANNEL, ALERTS_CHANNEL, INDEX_CHANNEL)
                await self.db(self._settings_follow)  # bumps from now on arrive as messages
                self.listening.set()
                self._ok("listening to changes")
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self._message(message["channel"], message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.listening.clear()
                self.index.announced_version = None  # nobody announces it: each batch reads it
                self._failed("listening to changes", error)
                self.markets_dirty.set()  # whatever was missed meanwhile
                await asyncio.sleep(1)
            finally:
                try:  # a subscription on a dead link may never answer its close
                    await asyncio.wait_for(pubsub.aclose(), timeout=2)
                except Exception:
                    logger.debug("closing a dead pubsub failed", exc_info=True)

    def _settings_follow(self) -> None:
        """The settings version as it is now; `_message` keeps it from the bumps."""
        self.index.announced_version = index_version()

    async def _message(self, channel, data) -> None:
        channel = channel.decode() if isinstance(channel, bytes) else channel
        if channel == MONITORING_CHANNEL:
            self.markets_dirty.set()
            return
        if channel == INDEX_CHANNEL:  # "<version>:<reason>" (risk.services.hooks)
            if self.index.announced_version is not None:
                self.index.announced_version = int(data.split(b":" if isinstance(data, bytes) else ":", 1)[0])
            return
        body = json.loads(data)
        if channel == POSITIONS_CHANNEL:
            user_ids = {uuid.UUID(user_id) for user_id in body["user_ids"]}
            await self.db(
                self.index.positions_changed,
                user_ids=user_ids,
                exchange=body["exchange"],
                symbols=set(body["symbols"]),
            )
            venue = self.venues.get(body["exchange"])
            if venue is None or not set(body["symbols"]) <= set(venue.status.symbols):
                self.markets_dirty.set()  # a position in a symbol the feed does not stream yet
        elif channel == ALERTS_CHANNEL and body.get("user_id") and body.get("origin") != PROCESS_ORIGIN:
            self.reload_users.add(uuid.UUID(str(body["user_id"])))  # not its own: re-read already

    def status(self) -> dict:
        now = time.time()
        return {
            "pid": os.getpid(),
            "started_at": iso_from_unix(self.started_at),
            "reported_at": iso_from_unix(now),
            "ticks": self.ticks,
            "batches": self.batches,
            "conflated": self.batch.conflated,
            "venues": [venue.status.as_dict(now) for venue in self.venues.values()],
            "failing": sorted(self._failing),
        }

    async def _status_loop(self) -> None:
        while True:
            try:
                await self.db(feed_status_write, status=self.status(), ttl_seconds=int(STATUS_SECONDS * 5))
                self._ok("reporting status")
            except Exception as error:
                self._failed("reporting status", error)
            await asyncio.sleep(STATUS_SECONDS)

    # --- life -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Load the risk index (retrying while the database is down) and route this
        process's position events to it."""
        while self.index is None:
            try:
                self.index = await self.db(lambda: RiskIndex().load())
            except Exception as error:
                self._failed("loading the risk index", error)
                await asyncio.sleep(2)
        self._ok("loading the risk index")
        index_activate(self.index)
        if self.owns_process:
            # The index lives as long as the process: the cyclic collector no longer walks
            # it. A full collection walked it all, stopping every thread 60-75 ms
            # (bench/feed.py), and a crossing tick waited for it.
            gc.collect()  # a load retried after an outage leaves tracebacks' cycles: not frozen
            gc.freeze()

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        loops = [
            self.outbox.run(self.redis, ok=self._ok, failed=self._failed),
            self._evaluation_loop(),
            self.caches.run(self.db, ok=self._ok, failed=self._failed),
            self._timer_loop(),
            self._markets_loop(),
            self._messages_loop(),
            self._status_loop(),
            self.dead_mans_switch.run(self.db),
        ]
        tasks = [asyncio.create_task(loop) for loop in loops]
        logger.info("Feed running (pid %s)", os.getpid())
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=SHUTDOWN_STEP_SECONDS)
            await self._shutdown()

    async def _shutdown(self) -> None:
        """Close the venues and persist the last marks, each step bounded: a stuck venue
        or database never keeps the process from exiting."""
        closing = asyncio.gather(*(venue.close() for venue in self.venues.values()), return_exceptions=True)
        try:
            await asyncio.wait_for(closing, timeout=SHUTDOWN_STEP_SECONDS)
        except TimeoutError:
            logger.warning("Feed: a venue did not close within %s s", SHUTDOWN_STEP_SECONDS)
        try:  # the ticks still waiting, then every mark moved
            if self.batch.waiting:
                await asyncio.wait_for(self.db(self._evaluate, self.batch.drain()), timeout=SHUTDOWN_STEP_SECONDS)
            await asyncio.wait_for(self._persist(until_empty=True), timeout=SHUTDOWN_STEP_SECONDS)
        except Exception as error:
            logger.warning("Feed: the last marks were not persisted: %s", error)
        index_activate(None)
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.caches.close()
        logger.info("Feed stopped")
