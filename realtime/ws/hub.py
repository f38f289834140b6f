"""The per-process WebSocket hub (SPEC §7, §11; STYLE §10).

One hub per daphne process (per event loop) while it holds sockets: daphne has no ASGI
lifespan, so the first connection starts it and the last one's departure stops it
(its Redis subscription, loops and registry entries go with it).

It holds:
- one Redis SUBSCRIBE connection for every stream: ticker and trades (subscribed while
  a local socket wants them), alerts (`etrms:alerts`), position changes
  (`etrms:accounts:positions`) and the control channel (close, broadcast);
- the local registry: connections by id, ticker/trades subscribers by symbol, ETRMS
  stream subscribers by view (`StreamView`: a user id, or None for an officer's desk
  view, and the symbols it is narrowed to);
- what it hears, delivered to its sockets (`realtime.ws.fanout`: ticks as published,
  framed once; alerts addressed to users; the per-user streams rebuilt in its own
  database thread);
- its presence in the Redis registry and its heartbeat (`realtime.ws.presence`).

This module holds the hub's life, its local registry and the subscriptions that change
it, and the one-hub-per-event-loop start and stop.
"""

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import redis.asyncio as aioredis
from django.conf import settings
from django.db import close_old_connections

from accounts.events import POSITIONS_CHANNEL
from realtime.ws import demand, registry
from realtime.ws.connection import Connection
from realtime.ws.fanout import MARKET_STREAMS, HubFanout
from realtime.ws.payloads import ALERTS, USER_STREAMS
from realtime.ws.presence import HubPresence
from realtime.ws.protocol import StreamView
from risk.publish import REDIS_ALERTS_CHANNEL

logger = logging.getLogger("realtime.ws")


class Hub(HubFanout, HubPresence):
    def __init__(self):
        self.proc_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.pid = os.getpid()
        self.connections: dict[str, Connection] = {}
        self.market: dict[str, dict[str, set]] = {name: defaultdict(set) for name in MARKET_STREAMS}
        self.streams: dict[str, dict] = {name: defaultdict(set) for name in (*USER_STREAMS, ALERTS)}
        self.snapshots: dict = {}  # (channel, view) -> payload bytes last sent
        self.alert_views: dict = defaultdict(set)  # scope -> its views in streams[ALERTS]
        self.demand_refs: dict[tuple, set] = defaultdict(set)  # (exchange, symbol) -> {(conn id, channel)}
        self.messages_in = self.messages_out = 0
        self.dirty: set = set()
        self.removed: set = set()
        self.wake = asyncio.Event()
        self.streams_wake = asyncio.Event()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ws-db")
        self.tasks: list = []
        self._failing: set = set()
        self.ttl = settings.WS_REGISTRY_TTL_SECONDS

    # --- life -------------------------------------------------------------------------------
    async def start(self) -> None:
        url = settings.REDIS_PLATFORM_URL
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=settings.WS_REDIS_MAX_CONNECTIONS, timeout=5
        )
        self.redis = aioredis.Redis(connection_pool=pool, socket_connect_timeout=2)
        listen_pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=2, timeout=5)
        self.listener = aioredis.Redis(connection_pool=listen_pool)
        self.pubsub = self.listener.pubsub(ignore_subscribe_messages=True)
        await self.pubsub.subscribe(registry.CONTROL_CHANNEL, REDIS_ALERTS_CHANNEL, POSITIONS_CHANNEL)
        await self._registry_write(beat=True)
        self.tasks = [
            asyncio.create_task(self._listen_loop()),
            asyncio.create_task(self._registry_loop()),
            asyncio.create_task(self._streams_loop()),
        ]
        logger.info("WebSocket hub %s started", self.proc_id)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.srem(registry.PROCS_KEY, self.proc_id)
            pipe.delete(registry.proc_key(self.proc_id), registry.conns_key(self.proc_id))
            await pipe.execute()
            if self.demand_refs:
                await demand.demand_set(
                    self.redis, proc_id=self.proc_id, add=set(), remove=set(self.demand_refs), ttl=0
                )
        except Exception as error:
            logger.warning("WebSocket hub %s: could not leave the registry: %s", self.proc_id, error)
        for closing in (self.pubsub.aclose(), self.listener.aclose(), self.redis.aclose()):
            with contextlib.suppress(Exception):
                await closing
        self.executor.shutdown(wait=False)
        logger.info("WebSocket hub %s stopped", self.proc_id)

    def _ok(self, what: str) -> None:
        if what in self._failing:
            self._failing.discard(what)
            logger.warning("WebSocket hub: %s works again", what)

    def _failed(self, what: str, error: Exception) -> None:
        if what not in self._failing:
            self._failing.add(what)
            logger.warning("WebSocket hub: %s failed, retrying: %s", what, error)

    async def db(self, function, *args):
        """Run `function` in the hub's database thread."""

        def call():
            close_old_connections()
            try:
                return function(*args)
            finally:
                close_old_connections()

        return await asyncio.get_running_loop().run_in_executor(self.executor, call)

    # --- the local registry -----------------------------------------------------------------
    def add(self, conn: Connection) -> None:
        conn.hub = self
        self.connections[conn.id] = conn
        self.changed(conn)

    async def remove(self, conn: Connection) -> None:
        self.connections.pop(conn.id, None)
        for channel, symbols in conn.symbols.items():
            await self.market_unsubscribe(conn, channel, set(symbols))
        for channel in list(conn.streams):
            self.stream_unsubscribe(conn, channel)
        self.dirty.discard(conn.id)
        self.removed.add(conn.id)
        self.wake.set()

    def changed(self, conn: Connection) -> None:
        self.dirty.add(conn.id)
        self.wake.set()

    # --- subscriptions ------------------------------------------------------------------------
    async def market_subscribe(self, conn: Connection, channel: str, symbols: set, demanded: dict) -> None:
        """Add `symbols`; `demanded` maps those the feed must stream on demand to their
        exchange."""
        first = not self.market[channel]
        for symbol in symbols:
            self.market[channel][symbol].add(conn)
            conn.symbols[channel].add(symbol)
        if first and self.market[channel]:
            await self.pubsub.subscribe(MARKET_STREAMS[channel])
        new = set()
        for symbol, exchange in demanded.items():
            refs = self.demand_refs[(exchange, symbol)]
            if not refs:
                new.add((exchange, symbol))
            refs.add((conn.id, channel))
        if new:
            await demand.demand_set(self.redis, proc_id=self.proc_id, add=new, remove=set(), ttl=self.ttl)
        self.changed(conn)

    async def market_unsubscribe(self, conn: Connection, channel: str, symbols: set) -> None:
        for symbol in symbols:
            conn.symbols[channel].discard(symbol)
            subscribers = self.market[channel].get(symbol)
            if subscribers is not None:
                subscribers.discard(conn)
                if not subscribers:
                    del self.market[channel][symbol]
        gone = set()
        for market, refs in list(self.demand_refs.items()):
            if market[1] in symbols:
                refs.discard((conn.id, channel))
                if not refs:
                    del self.demand_refs[market]
                    gone.add(market)
        try:
            if not self.market[channel]:
                await self.pubsub.unsubscribe(MARKET_STREAMS[channel])
            if gone:
                await demand.demand_set(self.redis, proc_id=self.proc_id, add=set(), remove=gone, ttl=self.ttl)
        except Exception as error:  # the subscription and the demand lapse by themselves
            self._failed("unsubscribing", error)
        self.changed(conn)

    def stream_subscribe(self, conn: Connection, channel: str, view: StreamView) -> None:
        """Subscribe to an ETRMS stream for `view`; the last snapshot, if any, is sent now
        and a fresh one follows within a round."""
        self.stream_unsubscribe(conn, channel)
        conn.streams[channel] = view
        self.streams[channel][view].add(conn)
        if channel == ALERTS:
            self.alert_views[view.scope].add(view)
        else:
            snapshot = self.snapshots.get((channel, view))
            if snapshot is not None:
                self._deliver_stream(channel, [conn], snapshot)
            self.streams_wake.set()
        self.changed(conn)

    def stream_unsubscribe(self, conn: Connection, channel: str) -> None:
        if channel not in conn.streams:
            return
        view = conn.streams.pop(channel)
        subscribers = self.streams[channel].get(view)
        if subscribers is not None:
            subscribers.discard(conn)
            if not subscribers:
                del self.streams[channel][view]
                self.snapshots.pop((channel, view), None)
                if channel == ALERTS:
                    self.alert_views[view.scope].discard(view)
                    if not self.alert_views[view.scope]:
                        del self.alert_views[view.scope]
        self.changed(conn)


# --- one hub per event loop, started by the first socket, stopped after the last ---------
_state: dict = {}


def _lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    if _state.get("loop") is not loop:
        _state.clear()
        _state.update(loop=loop, lock=asyncio.Lock(), hub=None)
    return _state["lock"]


async def hub_join(conn: Connection) -> Hub:
    async with _lock():
        hub = _state["hub"]
        if hub is None:
            hub = Hub()
            await hub.start()
            _state["hub"] = hub
        hub.add(conn)
        return hub


async def hub_leave(conn: Connection) -> None:
    async with _lock():
        hub = _state["hub"]
        if hub is None or conn.id not in hub.connections:
            return
        await hub.remove(conn)
        if not hub.connections:
            _state["hub"] = None
            await hub.stop()


def hub_current() -> Hub | None:
    return _state.get("hub")
