"""The per-process WebSocket hub (SPEC §7, §11; STYLE §10).

One hub per daphne process (per event loop) while it holds sockets: daphne has no ASGI
lifespan, so the first connection starts it and the last one's departure stops it
(its Redis subscription, loops and registry entries go with it).

It holds:
- one Redis SUBSCRIBE connection for every stream: ticker and trades (subscribed while
  a local socket wants them), alerts (`etrms:alerts`), position changes
  (`etrms:accounts:positions`) and the control channel (close, broadcast);
- the local registry: connections by id, ticker/trades subscribers by symbol, ETRMS
  stream subscribers by scope (a user id, or None for an officer's desk view);
- a loop that rebuilds the positions/accounts/risk-metrics payloads of the scopes its
  sockets watch (every `WS_USER_STREAM_SECONDS`, sooner on a position change, at most
  five times a second) in its own database thread, and sends those that changed;
- a loop that writes the registry and the heartbeat to Redis (realtime.ws.registry).

A tick is delivered as the feed published it: the frame text is the payload, framed
once for every socket (`Frame`); each socket's `Connection` writes it or conflates it.
"""

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import redis.asyncio as aioredis
from django.conf import settings
from django.db import close_old_connections

from accounts.events import POSITIONS_CHANNEL
from realtime.streams import TICKER_CHANNEL, TRADES_CHANNEL
from realtime.ws import demand, registry
from realtime.ws.connection import CLOSE_BY_OFFICER, Connection, Frame
from realtime.ws.payloads import ALERTS, USER_STREAMS, stream_payloads
from risk.publish import REDIS_ALERTS_CHANNEL

logger = logging.getLogger("realtime.ws")

MARKET_STREAMS = {"ticker": TICKER_CHANNEL, "trades": TRADES_CHANNEL}
_CHANNEL_OF = {TICKER_CHANNEL.encode(): "ticker", TRADES_CHANNEL.encode(): "trades"}
_MIN_ROUND_SECONDS = 0.2
_BATCH_SECONDS = 0.02


def _dumps(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class Hub:
    def __init__(self):
        self.proc_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.pid = os.getpid()
        self.connections: dict[str, Connection] = {}
        self.market: dict[str, dict[str, set]] = {name: defaultdict(set) for name in MARKET_STREAMS}
        self.streams: dict[str, dict] = {name: defaultdict(set) for name in (*USER_STREAMS, ALERTS)}
        self.snapshots: dict = {}  # (channel, scope) -> payload bytes last sent
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

    def stream_subscribe(self, conn: Connection, channel: str, scope) -> None:
        """Subscribe to an ETRMS stream for `scope`; the last snapshot, if any, is sent now
        and a fresh one follows within a round."""
        self.stream_unsubscribe(conn, channel)
        conn.streams[channel] = scope
        self.streams[channel][scope].add(conn)
        if channel != ALERTS:
            snapshot = self.snapshots.get((channel, scope))
            if snapshot is not None:
                self._deliver_stream(channel, [conn], snapshot)
            self.streams_wake.set()
        self.changed(conn)

    def stream_unsubscribe(self, conn: Connection, channel: str) -> None:
        if channel not in conn.streams:
            return
        scope = conn.streams.pop(channel)
        subscribers = self.streams[channel].get(scope)
        if subscribers is not None:
            subscribers.discard(conn)
            if not subscribers:
                del self.streams[channel][scope]
                self.snapshots.pop((channel, scope), None)
        self.changed(conn)

    # --- delivery -------------------------------------------------------------------------------
    def on_market(self, channel: str, data: bytes) -> None:
        body = json.loads(data)
        subscribers = self.market[channel].get(body["symbol"])
        if not subscribers:
            return
        frame, key = Frame(data), (channel, body["exchange"], body["symbol"])
        for conn in subscribers:
            conn.offer(frame, key)

    def on_alert(self, data: bytes) -> None:
        body = json.loads(data)
        alert = body["alert"]
        by_scope = self.streams[ALERTS]
        targets = by_scope.get(str(body.get("user_id")), set()) | by_scope.get(None, set())
        if not targets:
            return
        framed, bare = Frame(_dumps({"channel": ALERTS, "data": alert})), Frame(_dumps(alert))
        for conn in targets:
            if conn.held is not None:
                conn.held.append(alert)
            else:
                conn.offer(bare if conn.bare else framed)

    def _deliver_stream(self, channel: str, conns, payload: bytes) -> None:
        framed = Frame(b'{"channel":"' + channel.encode() + b'","data":' + payload + b"}")
        bare = Frame(payload)
        for conn in conns:
            conn.offer(bare if conn.bare else framed, ("s", channel))

    def on_positions(self, data: bytes) -> None:
        if any(self.streams[channel] for channel in USER_STREAMS):
            self.streams_wake.set()

    def on_control(self, data: bytes) -> None:
        command = json.loads(data)
        if command.get("op") == "close":
            conn = self.connections.get(command.get("connection_id"))
            if conn is not None:
                conn.close(CLOSE_BY_OFFICER, "closed by a risk officer")
        elif command.get("op") == "broadcast":
            delivered = self.broadcast(command["channel"], command.get("symbols"), command["frame"])
            reply = registry.reply_key(command["request_id"])
            task = asyncio.get_running_loop().create_task(self._reply(reply, delivered))
            self.tasks.append(task)
            task.add_done_callback(self.tasks.remove)

    def broadcast(self, channel: str, symbols, frame: dict) -> int:
        targets: set = set()
        if channel in self.market:
            for symbol, subscribers in self.market[channel].items():
                if not symbols or symbol in symbols:
                    targets |= subscribers
        elif channel in self.streams:
            for subscribers in self.streams[channel].values():
                targets |= subscribers
        payload = Frame(_dumps(frame))
        return sum(1 for conn in targets if conn.offer(payload))

    async def _reply(self, key: str, delivered: int) -> None:
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.rpush(key, delivered)
            pipe.expire(key, registry.REPLY_TTL_SECONDS)
            await pipe.execute()
        except Exception as error:
            self._failed("answering a broadcast", error)

    # --- loops ------------------------------------------------------------------------------
    def _dispatch(self, message: dict) -> None:
        channel, data = message["channel"], message["data"]
        market = _CHANNEL_OF.get(channel)
        if market is not None:
            self.on_market(market, data)
        elif channel == b"etrms:alerts":
            self.on_alert(data)
        elif channel == POSITIONS_CHANNEL.encode():
            self.on_positions(data)
        elif channel == registry.CONTROL_CHANNEL.encode():
            self.on_control(data)

    async def _listen_loop(self) -> None:
        while True:
            try:
                async for message in self.pubsub.listen():
                    if message["type"] == "message":
                        try:
                            self._dispatch(message)
                        except Exception:
                            logger.exception("WebSocket hub: a message could not be delivered")
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self._failed("listening to Redis", error)
                await asyncio.sleep(1)
                await self._resubscribe()

    async def _resubscribe(self) -> None:
        with contextlib.suppress(Exception):
            await self.pubsub.aclose()
        self.pubsub = self.listener.pubsub(ignore_subscribe_messages=True)
        channels = [registry.CONTROL_CHANNEL, REDIS_ALERTS_CHANNEL, POSITIONS_CHANNEL]
        channels += [MARKET_STREAMS[name] for name, symbols in self.market.items() if symbols]
        try:
            await self.pubsub.subscribe(*channels)
            self._ok("listening to Redis")
            self.dirty.update(self.connections)  # the registry may have expired meanwhile
            self.wake.set()
        except Exception as error:
            self._failed("listening to Redis", error)

    def stats(self) -> dict:
        subscriptions = {
            channel: sum(len(c.symbols[channel]) for c in self.connections.values()) for channel in self.market
        }
        for channel, scopes in self.streams.items():
            subscriptions[channel] = sum(len(conns) for conns in scopes.values())
        return {
            "pid": self.pid,
            "host": socket.gethostname(),
            "connections": len(self.connections),
            "subscriptions": subscriptions,
            "messages_in": self.messages_in,
            "messages_out": self.messages_out,
            "reported_at": time.time(),
        }

    async def _registry_write(self, *, beat: bool) -> None:
        dirty, removed = self.dirty, self.removed
        self.dirty, self.removed = set(), set()
        pipe = self.redis.pipeline(transaction=False)
        key = registry.conns_key(self.proc_id)
        if removed:
            pipe.hdel(key, *removed)
        records = {cid: json.dumps(self.connections[cid].record()) for cid in dirty if cid in self.connections}
        if records:
            pipe.hset(key, mapping=records)
        pipe.set(registry.proc_key(self.proc_id), json.dumps(self.stats()), ex=self.ttl)
        if beat:
            pipe.sadd(registry.PROCS_KEY, self.proc_id)
        if beat or records:
            pipe.expire(key, self.ttl)
        try:
            await pipe.execute()
            if beat:
                await demand.demand_refresh(
                    self.redis, proc_id=self.proc_id, markets=set(self.demand_refs), ttl=self.ttl
                )
        except Exception:
            self.dirty |= dirty
            self.removed |= removed
            raise

    async def _registry_loop(self) -> None:
        next_beat = time.monotonic() + settings.WS_HEARTBEAT_SECONDS
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=max(0.0, next_beat - time.monotonic()))
            self.wake.clear()
            await asyncio.sleep(_BATCH_SECONDS)  # let a burst of connects share one write
            beat = time.monotonic() >= next_beat
            try:
                await self._registry_write(beat=beat)
                self._ok("writing the registry")
            except Exception as error:
                self._failed("writing the registry", error)
                await asyncio.sleep(1)
            if beat:
                next_beat = time.monotonic() + settings.WS_HEARTBEAT_SECONDS

    async def _streams_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.streams_wake.wait(), timeout=settings.WS_USER_STREAM_SECONDS)
            self.streams_wake.clear()
            wanted = {channel: set(self.streams[channel]) for channel in USER_STREAMS if self.streams[channel]}
            if wanted:
                try:
                    payloads = await self.db(stream_payloads, wanted)
                    self._ok("building stream payloads")
                except Exception as error:
                    self._failed("building stream payloads", error)
                    await asyncio.sleep(1)
                    continue
                for (channel, scope), payload in payloads.items():
                    data = _dumps(payload)
                    subscribers = self.streams[channel].get(scope)
                    if not subscribers or self.snapshots.get((channel, scope)) == data:
                        continue
                    self.snapshots[(channel, scope)] = data
                    self._deliver_stream(channel, subscribers, data)
            await asyncio.sleep(_MIN_ROUND_SECONDS)


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
