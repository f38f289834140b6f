"""The WebSocket API (SPEC §7) through Channels' WebsocketCommunicator against the real
Redis: the hub's subscription, the registry and the database thread are the real ones."""

import asyncio
import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from rest_framework_simplejwt.tokens import AccessToken

from conftest import access_token_for
from etrms.redis_client import platform_redis
from etrms.ws_auth import JWTQueryAuthMiddleware
from realtime.routing import websocket_urlpatterns
from realtime.streams import TICKER_CHANNEL, TRADES_CHANNEL, ticker_frame, trade_frame
from realtime.ws import demand, registry
from realtime.ws.hub import hub_current

pytestmark = pytest.mark.django_db(transaction=True)

app = JWTQueryAuthMiddleware(URLRouter(websocket_urlpatterns))


async def connect(user, path: str = "/api/v1/ws", query: str = "", token: str | None = None) -> WebsocketCommunicator:
    token = token or await sync_to_async(access_token_for)(user)
    communicator = WebsocketCommunicator(app, f"{path}?token={token}{query}")
    connected, code = await communicator.connect(timeout=5)
    assert connected, code
    return communicator


async def send(communicator, message: dict) -> dict:
    await communicator.send_to(text_data=json.dumps(message))
    return await receive(communicator)


async def receive(communicator, timeout: float = 3) -> dict:
    return json.loads(await communicator.receive_from(timeout=timeout))


async def receive_until(communicator, predicate, timeout: float = 5) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        frame = await receive(communicator, timeout=max(0.05, deadline - time.monotonic()))
        if predicate(frame):
            return frame


async def close_all(*communicators) -> None:
    for communicator in communicators:
        await communicator.disconnect()
    assert hub_current() is None  # the last socket stopped the hub


def ticker(symbol: str = "BTCUSDT", price: str = "60000.5", exchange: str = "paper") -> str:
    tick = SimpleNamespace(
        symbol=symbol, last=Decimal(price), change_pct=Decimal("1.5"), volume=Decimal(10), timestamp=datetime.now(UTC)
    )
    return ticker_frame(exchange=exchange, ticker=tick)


async def publish(channel: str, text: str) -> None:
    await sync_to_async(platform_redis().publish)(channel, text)


# --- the protocol ----------------------------------------------------------------------------
async def test_ticker_subscription_is_acknowledged_and_receives_phase4_ticks(trader):
    ws = await connect(trader)
    ack = await send(ws, {"action": "subscribe", "channel": "ticker", "symbols": ["btcusdt"]})
    assert ack["type"] == "ack" and ack["channel"] == "ticker" and ack["symbols"] == ["BTCUSDT"]
    assert ack["subscriptions"] == ["ticker:BTCUSDT"]
    await publish(TICKER_CHANNEL, ticker("ETHUSDT"))  # not subscribed
    await publish(TICKER_CHANNEL, ticker("BTCUSDT", "60001"))
    frame = await receive(ws)
    assert frame == {**json.loads(ticker("BTCUSDT", "60001")), "timestamp": frame["timestamp"]}
    assert frame["channel"] == "ticker" and frame["exchange"] == "paper" and frame["price"] == "60001.00"
    ack = await send(ws, {"action": "unsubscribe", "channel": "ticker", "symbols": ["BTCUSDT"]})
    assert ack["type"] == "ack" and ack["subscriptions"] == []
    await publish(TICKER_CHANNEL, ticker("BTCUSDT"))
    assert await ws.receive_nothing(timeout=0.3)
    await close_all(ws)


async def test_trades_subscription_receives_trade_frames(trader):
    ws = await connect(trader)
    await send(ws, {"action": "subscribe", "channel": "trades", "symbols": ["ETHUSDT"]})
    trade = SimpleNamespace(
        symbol="ETHUSDT", price=Decimal(3000), amount=Decimal("0.5"), side="buy", id=7, timestamp=datetime.now(UTC)
    )
    await publish(TRADES_CHANNEL, trade_frame(exchange="paper", trade=trade))
    frame = await receive(ws)
    assert set(frame) == {"channel", "symbol", "exchange", "price", "quantity", "side", "trade_id", "timestamp"}
    assert frame["channel"] == "trades" and frame["quantity"] == "0.50" and frame["trade_id"] == "7"
    await close_all(ws)


async def test_ping_gets_a_pong(trader):
    ws = await connect(trader)
    pong = await send(ws, {"action": "ping", "id": 3})
    assert pong["type"] == "pong" and pong["channel"] == "system" and pong["id"] == 3
    await close_all(ws)


@pytest.mark.parametrize(
    ("message", "channel", "words"),
    [
        ("{not json", "system", "Invalid JSON"),
        (json.dumps({"action": "dance"}), "system", "Unknown action"),
        (json.dumps({"action": "subscribe", "channel": "gossip", "symbols": ["BTCUSDT"]}), "gossip", "Unknown channel"),
        (json.dumps({"action": "subscribe", "channel": "ticker", "symbols": ["NOPEUSDT"]}), "ticker", "NOPEUSDT"),
        (json.dumps({"action": "subscribe", "channel": "ticker", "symbols": []}), "ticker", "Name the symbols"),
        (json.dumps({"action": "subscribe", "channel": "ticker", "symbols": ["A", "B", "C"]}), "ticker", "Too many"),
    ],
)
async def test_bad_messages_get_an_error_frame_not_a_disconnect(trader, settings, message, channel, words):
    settings.WS_MAX_SYMBOLS = 2
    ws = await connect(trader)
    await ws.send_to(text_data=message)
    error = await receive(ws)
    assert error["type"] == "error" and error["channel"] == channel and words in error["message"]
    assert (await send(ws, {"action": "ping"}))["type"] == "pong"  # still open
    await close_all(ws)


async def test_too_many_symbols_across_subscriptions_is_an_error(trader, settings):
    settings.WS_MAX_SYMBOLS = 2
    ws = await connect(trader)
    assert (await send(ws, {"action": "subscribe", "channel": "ticker", "symbols": ["BTCUSDT", "ETHUSDT"]}))[
        "type"
    ] == "ack"
    error = await send(ws, {"action": "subscribe", "channel": "trades", "symbols": ["SOLUSDT"]})
    assert error["type"] == "error" and "Too many symbols" in error["message"]
    await close_all(ws)


# --- on-demand markets ------------------------------------------------------------------------
@pytest.fixture
def no_demand():
    """Demands of an earlier run's hubs lapse by themselves; these tests start without."""
    platform_redis().delete(demand.DEMAND_KEY)


async def _demanded():
    client = hub_current().redis
    return await demand.demanded_markets(client)


async def test_unmonitored_symbol_is_streamed_on_demand_while_subscribed(trader, no_demand):
    ws = await connect(trader)
    await send(ws, {"action": "subscribe", "channel": "ticker", "symbols": ["SOLUSDT"]})
    assert await _demanded() == {"paper": ["SOLUSDT"]}
    await send(ws, {"action": "unsubscribe", "channel": "ticker", "symbols": ["SOLUSDT"]})
    assert await _demanded() == {}
    await close_all(ws)


async def test_on_demand_symbols_are_capped(trader, settings, no_demand):
    settings.WS_ON_DEMAND_MAX_SYMBOLS = 1
    ws = await connect(trader)
    assert (await send(ws, {"action": "subscribe", "channel": "ticker", "symbols": ["SOLUSDT"]}))["type"] == "ack"
    error = await send(ws, {"action": "subscribe", "channel": "ticker", "symbols": ["ETHUSDT"]})
    assert error["type"] == "error" and "on demand" in error["message"]
    assert (await send(ws, {"action": "subscribe", "channel": "trades", "symbols": ["SOLUSDT"]}))["type"] == "ack"
    await close_all(ws)


async def test_feed_streams_demanded_markets_with_the_monitored_ones():
    import redis.asyncio as aioredis
    from django.conf import settings

    client = aioredis.Redis.from_url(settings.REDIS_PLATFORM_URL)
    try:
        await client.delete(demand.DEMAND_KEY)
        await client.zadd(demand.DEMAND_KEY, {demand.member("paper", "SOLUSDT", "a"): time.time() + 30})
        await client.zadd(demand.DEMAND_KEY, {demand.member("paper", "ETHUSDT", "dead"): time.time() - 1})
        demanded = await demand.demanded_markets(client)
        assert demanded == {"paper": ["SOLUSDT"]}  # the lapsed one is gone
        assert demand.markets_merge({"paper": ["BTCUSDT"]}, demanded) == {"paper": ["BTCUSDT", "SOLUSDT"]}
    finally:
        await client.delete(demand.DEMAND_KEY)
        await client.aclose()


# --- auth ---------------------------------------------------------------------------------------
async def test_socket_is_closed_with_4401_when_its_token_expires(trader):
    token = await sync_to_async(AccessToken.for_user)(trader)
    # Long enough for the handshake on a slow, loaded machine (1 s expired during it once).
    token.set_exp(lifetime=__import__("datetime").timedelta(seconds=3))
    ws = await connect(trader, token=str(token))
    assert (await send(ws, {"action": "ping"}))["type"] == "pong"
    output = await ws.receive_output(timeout=8)
    assert output["type"] == "websocket.close" and output["code"] == 4401


async def test_expired_token_is_refused_at_the_handshake(trader):
    token = await sync_to_async(AccessToken.for_user)(trader)
    token.set_exp(lifetime=__import__("datetime").timedelta(seconds=-1))
    communicator = WebsocketCommunicator(app, f"/api/v1/ws?token={token}")
    connected, code = await communicator.connect()
    assert not connected and code == 4401


# --- registry and management (through the REST API) -----------------------------------------------
async def test_connections_and_stats_show_the_socket_and_its_subscriptions(trader, officer, api_client_for):
    ws = await connect(trader, query="&client_id=bot-7")
    await send(ws, {"action": "subscribe", "channel": "ticker", "symbols": ["BTCUSDT"]})
    await send(ws, {"action": "subscribe", "channel": "alerts"})

    def listed(client):
        return client.get("/api/v1/websocket/connections").json()["connections"]

    trader_client, officer_client = (
        await sync_to_async(api_client_for)(trader),
        await sync_to_async(api_client_for)(officer),
    )
    deadline = time.monotonic() + 3
    while not (mine := await sync_to_async(listed)(trader_client)) or len(mine[0]["subscriptions"]) < 2:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert mine[0]["client_id"] == "bot-7" and mine[0]["subscriptions"] == ["ticker:BTCUSDT", "alerts"]
    assert "user_id" not in mine[0] and mine[0]["connected_at"].endswith("Z")
    everyone = await sync_to_async(listed)(officer_client)
    assert str(trader.pk) in [item["user_id"] for item in everyone]
    stranger = await sync_to_async(type(trader).objects.create)(username="x")
    other = await sync_to_async(listed)(await sync_to_async(api_client_for)(stranger))
    assert other == []

    def stats_written():
        """The hub writes its stats within a few ms of a change: wait until the second ack
        is counted, not a fixed time."""
        stats = officer_client.get("/api/v1/websocket/stats").json()
        mine = next((item for item in stats["processes"] if item["process"] == hub_current().proc_id), None)
        return (stats, mine) if mine and mine["messages_out"] >= 2 else None

    deadline = time.monotonic() + 3
    while not (written := await sync_to_async(stats_written)()):
        assert time.monotonic() < deadline, "the hub's stats were not written"
        await asyncio.sleep(0.05)
    stats, mine = written
    assert mine["connections"] == 1 and mine["subscriptions"]["ticker"] == 1 and mine["subscriptions"]["alerts"] == 1
    assert mine["messages_in"] == 2 and mine["messages_out"] == 2  # the two acks
    assert stats["connections"] == sum(item["connections"] for item in stats["processes"])
    await close_all(ws)
    assert await sync_to_async(registry.connections_list)(user_id=trader.pk) == []


async def test_delete_closes_the_connection_and_unknown_ids_are_404(trader, officer, api_client_for):
    ws = await connect(trader)
    deadline = time.monotonic() + 3
    while not (records := await sync_to_async(registry.connections_list)(user_id=trader.pk)):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    trader_client, officer_client = (
        await sync_to_async(api_client_for)(trader),
        await sync_to_async(api_client_for)(officer),
    )
    url = f"/api/v1/websocket/connections/{records[0]['connection_id']}"
    assert (await sync_to_async(trader_client.delete)(url)).status_code == 403
    started = time.monotonic()
    assert (await sync_to_async(officer_client.delete)(url)).status_code == 204
    output = await ws.receive_output(timeout=1)
    assert output["type"] == "websocket.close" and output["code"] == 4000 and time.monotonic() - started < 1
    unknown = "/api/v1/websocket/connections/00000000-0000-0000-0000-000000000000"
    assert (await sync_to_async(officer_client.delete)(unknown)).status_code == 404
    await ws.disconnect()


async def test_broadcast_reaches_the_channels_subscribers_and_counts_them(trader, officer, api_client_for):
    first, second, other = await connect(trader), await connect(trader), await connect(trader)
    await send(first, {"action": "subscribe", "channel": "ticker", "symbols": ["BTCUSDT"]})
    await send(second, {"action": "subscribe", "channel": "ticker", "symbols": ["ETHUSDT"]})
    await send(other, {"action": "subscribe", "channel": "alerts"})
    client = await sync_to_async(api_client_for)(officer)
    body = {"channel": "ticker", "message": "maintenance at 12:00", "symbols": ["BTCUSDT"]}
    response = await sync_to_async(client.post)("/api/v1/websocket/broadcast", body, format="json")
    assert response.status_code == 200 and response.json() == {"delivered": 1}
    frame = await receive(first)
    assert frame["type"] == "broadcast" and frame["channel"] == "ticker" and frame["from"] == officer.username
    assert frame["message"] == "maintenance at 12:00" and frame["timestamp"].endswith("Z")
    assert await second.receive_nothing(timeout=0.2) and await other.receive_nothing(timeout=0.1)
    body = {"channel": "ticker", "message": {"note": "all"}}
    assert (await sync_to_async(client.post)("/api/v1/websocket/broadcast", body, format="json")).json() == {
        "delivered": 2
    }
    denied = await sync_to_async((await sync_to_async(api_client_for)(trader)).post)(
        "/api/v1/websocket/broadcast", body, format="json"
    )
    assert denied.status_code == 403
    bad = await sync_to_async(client.post)("/api/v1/websocket/broadcast", {"channel": "x", "message": 1}, format="json")
    assert bad.status_code == 400
    await close_all(first, second, other)
