"""Fan-out of a hub (realtime.ws.hub): what arrives on its Redis subscription goes to
its local sockets (SPEC §7, §11; STYLE §10).

- ticker and trades: the feed's frame text is the payload, framed once (`Frame`) and
  offered to each subscriber of the symbol, whose `Connection` writes or conflates it;
- alerts: addressed to the user's sockets and to officers' desk views (a view narrowed
  to symbols takes the alerts about those symbols and those about none), framed once,
  never dropped (a socket replaying `since_alert_id` holds them until its replay is sent);
- positions, accounts, risk-metrics: rebuilt per view (scope and symbols, so a frame is
  serialised once per distinct content, not per socket) in the hub's database thread
  (every `WS_USER_STREAM_SECONDS`, sooner on a position change, at most five times a
  second) and sent when they changed;
- control: an officer's close and broadcast, wherever the socket lives.
"""

import asyncio
import contextlib
import json
import logging

from django.conf import settings

from accounts.events import POSITIONS_CHANNEL
from realtime.streams import TICKER_CHANNEL, TRADES_CHANNEL
from realtime.ws import registry
from realtime.ws.connection import CLOSE_BY_OFFICER, Frame
from realtime.ws.payloads import ALERTS, USER_STREAMS, stream_payloads
from risk.publish import REDIS_ALERTS_CHANNEL

logger = logging.getLogger("realtime.ws")

MARKET_STREAMS = {"ticker": TICKER_CHANNEL, "trades": TRADES_CHANNEL}
_CHANNEL_OF = {TICKER_CHANNEL.encode(): "ticker", TRADES_CHANNEL.encode(): "trades"}
_ALERTS, _POSITIONS, _CONTROL = (
    name.encode() for name in (REDIS_ALERTS_CHANNEL, POSITIONS_CHANNEL, registry.CONTROL_CHANNEL)
)
_MIN_ROUND_SECONDS = 0.2


def dumps(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class HubFanout:
    """The delivery half of `Hub`: it reads the hub's local registry (`market`,
    `streams`, `alert_views`, `connections`, `snapshots`) and its Redis clients."""

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
        user_id, symbol = str(body.get("user_id")), alert.get("symbol")
        views = self.alert_views.get(user_id, set()) | self.alert_views.get(None, set())
        targets = [conn for view in views if view.covers(symbol) for conn in self.streams[ALERTS][view]]
        if not targets:
            return
        framed, bare = Frame(dumps({"channel": ALERTS, "data": alert})), Frame(dumps(alert))
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
        payload = Frame(dumps(frame))
        return sum(1 for conn in targets if conn.offer(payload))

    async def _reply(self, key: str, delivered: int) -> None:
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.rpush(key, delivered)
            pipe.expire(key, registry.REPLY_TTL_SECONDS)
            await pipe.execute()
        except Exception as error:
            self._failed("answering a broadcast", error)

    # --- listening ---------------------------------------------------------------------------
    def _dispatch(self, message: dict) -> None:
        channel, data = message["channel"], message["data"]
        market = _CHANNEL_OF.get(channel)
        if market is not None:
            self.on_market(market, data)
        elif channel == _ALERTS:
            self.on_alert(data)
        elif channel == _POSITIONS:
            self.on_positions(data)
        elif channel == _CONTROL:
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
                for (channel, view), payload in payloads.items():
                    data = dumps(payload)
                    subscribers = self.streams[channel].get(view)
                    if not subscribers or self.snapshots.get((channel, view)) == data:
                        continue
                    self.snapshots[(channel, view)] = data
                    self._deliver_stream(channel, subscribers, data)
            await asyncio.sleep(_MIN_ROUND_SECONDS)
