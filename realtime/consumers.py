"""WebSocket consumers (SPEC §7): `/api/v1/ws` (subscribe/unsubscribe, Phase 4 market
frames and ETRMS streams) and ETRMS's `/api/v1/ws/positions`, `/ws/accounts`,
`/ws/risk-metrics`, `/ws/alerts`.

Thin: the token was checked at the handshake (`etrms.ws_auth`, 4401); a consumer
registers its socket with the process's hub (`realtime.ws.hub`), parses what the client
sends and calls the hub. Frames reach the socket from the hub, never through the
channel layer (SPEC §11: a consumer per socket fed by `group_send` does not scale), so
these consumers join no channel-layer group. The socket is closed with 4401 when its
access token expires.
"""

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from accounts.exchanges import ExchangeError, UnknownExchange, UnknownSymbol, exchange_open
from accounts.selectors import monitored_markets
from etrms.metrics import websocket_connected, websocket_disconnected
from realtime.services.market_data import exchange_resolve
from realtime.streams import iso_z
from realtime.ws import demand
from realtime.ws.connection import CLOSE_TOKEN_EXPIRED, Connection, Frame, writer_for
from realtime.ws.hub import hub_join, hub_leave
from realtime.ws.metrics import collector_register as frames_collector_register
from realtime.ws.metrics import frames
from realtime.ws.payloads import ALERTS, alerts_since
from realtime.ws.protocol import (
    MARKET_CHANNELS,
    ProtocolError,
    Request,
    StreamView,
    ack_frame,
    error_frame,
    pong_frame,
    request_parse,
)

logger = logging.getLogger("realtime.ws")


def _now() -> str:
    return iso_z(datetime.now(UTC))


class HubConsumer(AsyncWebsocketConsumer):
    """Registers the socket with the hub; closes it when its token expires."""

    channel_layer_alias = "hub"  # no such layer: these sockets are fed by the hub

    async def connect(self):
        user = self.scope["user"]
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        client_id = (query.get("client_id") or [""])[0][:128] or f"client-{uuid.uuid4().hex[:12]}"
        await self.accept()
        self.conn = Connection(
            connection_id=str(uuid.uuid4()),
            client_id=client_id,
            user=user,
            writer=writer_for(self.base_send),
            connected_at=_now(),
            reliable_max=settings.WS_RELIABLE_BUFFER,
        )
        frames_collector_register()
        websocket_connected(self.scope["path"])
        self.hub = await hub_join(self.conn)
        expires = float(user.token.get("exp", 0)) if hasattr(user, "token") else 0
        self.expiry = asyncio.get_running_loop().call_later(
            max(0.0, expires - time.time()), self.conn.close, CLOSE_TOKEN_EXPIRED, "token expired"
        )
        await self.opened(query)

    async def opened(self, query: dict) -> None:
        """What a socket subscribes to on connect."""

    async def disconnect(self, code):
        conn = getattr(self, "conn", None)
        if conn is None:
            return
        websocket_disconnected(self.scope["path"])
        self.expiry.cancel()
        conn.closed = True
        conn.writer.detach()
        await hub_leave(conn)

    def send_frame(self, text: str) -> None:
        self.conn.offer(Frame.of(text))

    def scope_for(self, requested: str | None):
        """The user id a stream covers: the caller's own (a trader; naming another user is
        an error), or for an officer the desk (None) unless narrowed to one user."""
        if self.conn.officer:
            return requested
        if requested is not None and requested != self.conn.user_id:
            raise ProtocolError("User not found.", channel=ALERTS)
        return self.conn.user_id

    async def alerts_subscribe(
        self, view: StreamView, since_alert_id: str | None, *, channel_name: str | None
    ) -> list | None:
        """Subscribe to live alerts; with `since_alert_id`, first replay the alerts written
        after it (live ones arriving meanwhile are held, then sent unless replayed)."""
        conn = self.conn
        if since_alert_id is None:
            self.hub.stream_subscribe(conn, ALERTS, view)
            return []
        conn.held = []
        self.hub.stream_subscribe(conn, ALERTS, view)
        try:
            replay = await self.hub.db(lambda: alerts_since(view=view, since_alert_id=since_alert_id))
        except Exception:
            conn.held = None
            self.hub.stream_unsubscribe(conn, ALERTS)
            raise
        held, conn.held = conn.held, None
        if replay is None:
            self.hub.stream_unsubscribe(conn, ALERTS)
            return None
        seen = {alert["id"] for alert in replay}
        for alert in replay + [alert for alert in held if alert["id"] not in seen]:
            self.send_alert(alert, channel_name)
        return replay

    def send_alert(self, alert: dict, channel_name: str | None) -> None:
        import json

        body = alert if channel_name is None else {"channel": channel_name, "data": alert}
        self.send_frame(json.dumps(body, separators=(",", ":")))


class StreamConsumer(HubConsumer):
    """`/api/v1/ws`: subscribe and unsubscribe to market and ETRMS channels."""

    async def receive(self, text_data=None, bytes_data=None):
        self.hub.messages_in += 1
        frames["in"] += 1
        request = None
        try:
            request = request_parse(text_data, max_symbols=settings.WS_MAX_SYMBOLS)
            await self.act(request)
        except ProtocolError as error:
            self.send_frame(error_frame(error, request.request_id if request else None))
        except Exception as error:  # a dependency failed: say so, keep the socket
            logger.warning("WebSocket %s: %s failed: %s", self.conn.id, request, error)
            channel = request.channel if request else "system"
            self.send_frame(error_frame(ProtocolError("Temporarily unavailable, retry.", channel=channel)))

    async def act(self, request: Request) -> None:
        conn, hub = self.conn, self.hub
        if request.action == "ping":
            self.send_frame(pong_frame(request, at=_now()))
            return
        symbols: list = []
        if request.channel in MARKET_CHANNELS:
            if request.action == "subscribe":
                symbols = await self.market_subscribe(request)
            else:
                symbols = sorted(set(request.symbols) & conn.symbols[request.channel])
                await hub.market_unsubscribe(conn, request.channel, set(symbols))
        elif request.action == "unsubscribe":
            hub.stream_unsubscribe(conn, request.channel)
        else:
            try:
                scope = self.scope_for(request.user_id)
            except ProtocolError as error:
                error.channel = request.channel
                raise
            if request.symbols:
                _, symbols = await self.symbols_check(request)
            view = StreamView(scope, frozenset(symbols))
            if request.channel == ALERTS:
                # The ack goes first; replayed alerts follow it.
                labels = view.labels(ALERTS, conn.user_id)
                self.send_frame(ack_frame(request, symbols=symbols, subscriptions=[*conn.subscriptions(), *labels]))
                replayed = await self.alerts_subscribe(view, request.since_alert_id, channel_name=ALERTS)
                if replayed is None:
                    raise ProtocolError("Unknown since_alert_id.", channel=ALERTS, action="subscribe")
                return
            hub.stream_subscribe(conn, request.channel, view)
        self.send_frame(ack_frame(request, symbols=symbols, subscriptions=conn.subscriptions()))

    async def symbols_check(self, request: Request) -> tuple[str, list]:
        """The venue that validates `request.symbols` (its `exchange`, by default the
        first monitored one) and the symbols' canonical names; an unknown exchange or
        symbol is a ProtocolError."""
        channel = request.channel
        try:
            exchange = await self.hub.db(exchange_resolve, request.exchange)
            async with exchange_open(exchange) as venue:
                return exchange, [await venue.check_symbol(symbol) for symbol in request.symbols]
        except (UnknownExchange, UnknownSymbol) as error:
            raise ProtocolError(str(error), channel=channel, action="subscribe") from None
        except ExchangeError as error:
            raise ProtocolError(f"The exchange did not answer: {error}", channel=channel, action="subscribe") from None

    async def market_subscribe(self, request: Request) -> list:
        conn, hub, channel = self.conn, self.hub, request.channel
        exchange, symbols = await self.symbols_check(request)
        held = conn.symbols["ticker"] | conn.symbols["trades"]
        if len(held | set(symbols)) > settings.WS_MAX_SYMBOLS:
            raise ProtocolError(
                f"Too many symbols: at most {settings.WS_MAX_SYMBOLS} a connection.",
                channel=channel,
                action="subscribe",
            )
        monitored = set((await hub.db(monitored_markets)).get(exchange, ()))
        wanted = {symbol: exchange for symbol in symbols if symbol not in monitored}
        if wanted:
            demanded = await demand.demanded_markets(hub.redis)
            markets = {(venue_id, symbol) for venue_id, names in demanded.items() for symbol in names}
            markets |= set(hub.demand_refs)
            if len(markets | {(exchange, symbol) for symbol in wanted}) > settings.WS_ON_DEMAND_MAX_SYMBOLS:
                raise ProtocolError(
                    f"Too many symbols streamed on demand (at most {settings.WS_ON_DEMAND_MAX_SYMBOLS}): "
                    "subscribe to a monitored symbol or try later.",
                    channel=channel,
                    action="subscribe",
                )
        await hub.market_subscribe(conn, channel, set(symbols), wanted)
        return symbols


class ChannelConsumer(HubConsumer):
    """ETRMS's `/api/v1/ws/<channel>`: subscribed on connect, bare payloads; any text from
    the client is a keep-alive. `?user_id=` narrows an officer's desk view; on
    `/ws/alerts`, `?since_alert_id=` replays the alerts written after that one."""

    stream: str = ""

    async def opened(self, query: dict) -> None:
        self.conn.bare = self.stream
        try:
            raw_user = (query.get("user_id") or [None])[0]
            scope = self.scope_for(str(uuid.UUID(raw_user)) if raw_user else None)
            raw_since = (query.get("since_alert_id") or [None])[0]
            since = str(uuid.UUID(raw_since)) if raw_since and self.stream == ALERTS else None
        except (ValueError, ProtocolError):
            await self.close(code=4404)
            return
        if self.stream == ALERTS:
            if await self.alerts_subscribe(StreamView(scope), since, channel_name=None) is None:
                await self.close(code=4404)
        else:
            self.hub.stream_subscribe(self.conn, self.stream, StreamView(scope))

    async def receive(self, text_data=None, bytes_data=None):
        self.hub.messages_in += 1
        frames["in"] += 1


def channel_consumer(stream: str):
    return type(f"{stream.title().replace('-', '')}Consumer", (ChannelConsumer,), {"stream": stream}).as_asgi()
