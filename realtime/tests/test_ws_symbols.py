"""ETRMS streams narrowed to symbols (issue 12, SPEC §7): a socket that subscribes to
`positions` or `alerts` with `symbols` receives only those symbols (and, on alerts, the
account-wide alerts about no symbol); `accounts` and `risk-metrics` take no symbols; a
bad symbol is an error frame. Real Redis, real database thread (transactional tests)."""

import asyncio
import time
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from accounts.events import positions_changed
from realtime.tests.test_ws_consumers import close_all, connect, receive, receive_until, send
from realtime.ws.hub import hub_current
from risk.services.alerts import AlertSpec, alert_raise
from risk.tests import books

pytestmark = pytest.mark.django_db(transaction=True)


def symbol_alert(user, symbol: str | None, *, at=None):
    """A breaker alert about `symbol`; None: an account-wide alert (no symbol)."""
    metadata = {"breaker": "max_drawdown_exceeded", "exchange": "paper", "action_result": "Position closed"}
    if symbol is not None:
        metadata["symbol"] = symbol
    spec = AlertSpec(
        key=f"breaker:{symbol}:{time.monotonic_ns()}",
        alert_type="circuit_breaker",
        severity="critical",
        message="Position has exceeded maximum allowed drawdown",
        metadata=metadata,
    )
    return alert_raise(user_id=user.pk, spec=spec, now=at)


async def test_positions_subscribed_for_btcusdt_receive_only_btcusdt_when_two_symbols_change(trader, settings):
    settings.WS_USER_STREAM_SECONDS = 30  # only the announcement wakes the loop
    account = await sync_to_async(books.account)(trader)
    narrowed, everything = await connect(trader), await connect(trader)
    ack = await send(narrowed, {"action": "subscribe", "channel": "positions", "symbols": ["btcusdt"]})
    assert ack["type"] == "ack" and ack["symbols"] == ["BTCUSDT"] and ack["subscriptions"] == ["positions:BTCUSDT"]
    assert (await send(everything, {"action": "subscribe", "channel": "positions"}))["subscriptions"] == ["positions"]
    for ws in (narrowed, everything):
        assert (await receive(ws))["data"]["positions_by_symbol"] == {}
    await asyncio.sleep(0.3)  # past the loop's minimum round
    await sync_to_async(books.position)(account, "BTCUSDT", size="1", entry="60000", mark="60000")
    await sync_to_async(books.position)(account, "ETHUSDT", size="2", entry="3000", mark="3000")
    await sync_to_async(positions_changed)(user_ids={trader.pk}, exchange="paper", symbols={"BTCUSDT", "ETHUSDT"})

    frame = (await receive(narrowed, timeout=2))["data"]
    assert list(frame["positions_by_symbol"]) == ["BTCUSDT"]
    assert [item["symbol"] for item in frame["exchanges"]["paper"]["positions"]] == ["BTCUSDT"]
    assert frame["total_position_value"] == 60000.0
    full = (await receive(everything, timeout=2))["data"]
    assert list(full["positions_by_symbol"]) == ["BTCUSDT", "ETHUSDT"] and full["total_position_value"] == 66000.0
    await close_all(narrowed, everything)


async def test_sockets_naming_the_same_symbols_share_one_view_and_one_frame(trader):
    account = await sync_to_async(books.account)(trader)
    await sync_to_async(books.position)(account, "BTCUSDT", size="1", entry="60000")
    sockets = [await connect(trader) for _ in range(3)]
    for ws, symbols in zip(sockets, (["BTCUSDT"], ["btcusdt"], []), strict=True):
        await ws.send_json_to({"action": "subscribe", "channel": "positions", "symbols": symbols})
    frames = [await receive_until(ws, lambda frame: "data" in frame) for ws in sockets]
    assert frames[0] == frames[1] and list(frames[0]["data"]["positions_by_symbol"]) == ["BTCUSDT"]
    views = hub_current().streams["positions"]
    assert sorted(len(conns) for conns in views.values()) == [1, 2]  # two views for three sockets
    await close_all(*sockets)


async def test_alerts_subscribed_for_btcusdt_receive_btcusdt_and_account_wide_alerts_not_ethusdt(trader):
    narrowed, everything = await connect(trader), await connect(trader)
    ack = await send(narrowed, {"action": "subscribe", "channel": "alerts", "symbols": ["BTCUSDT"]})
    assert ack["type"] == "ack" and ack["subscriptions"] == ["alerts:BTCUSDT"]
    await send(everything, {"action": "subscribe", "channel": "alerts"})
    eth = await sync_to_async(symbol_alert)(trader, "ETHUSDT")
    btc = await sync_to_async(symbol_alert)(trader, "BTCUSDT")
    desk_wide = await sync_to_async(symbol_alert)(trader, None)

    received = [(await receive(narrowed))["data"] for _ in range(2)]
    assert [alert["id"] for alert in received] == [str(btc.pk), str(desk_wide.pk)]
    assert received[1]["symbol"] is None
    assert await narrowed.receive_nothing(timeout=0.3)
    ids = [(await receive(everything))["data"]["id"] for _ in range(3)]
    assert ids == [str(eth.pk), str(btc.pk), str(desk_wide.pk)]
    await close_all(narrowed, everything)


async def test_since_alert_id_with_symbols_replays_only_those_symbols_and_account_wide_alerts(trader):
    now = timezone.now()
    anchor = await sync_to_async(symbol_alert)(trader, "BTCUSDT", at=now - timedelta(seconds=40))
    await sync_to_async(symbol_alert)(trader, "ETHUSDT", at=now - timedelta(seconds=30))
    btc = await sync_to_async(symbol_alert)(trader, "BTCUSDT", at=now - timedelta(seconds=20))
    desk_wide = await sync_to_async(symbol_alert)(trader, None, at=now - timedelta(seconds=10))
    ws = await connect(trader)
    ack = await send(
        ws, {"action": "subscribe", "channel": "alerts", "symbols": ["BTCUSDT"], "since_alert_id": str(anchor.pk)}
    )
    assert ack["type"] == "ack"
    assert [(await receive(ws))["data"]["id"] for _ in range(2)] == [str(btc.pk), str(desk_wide.pk)]
    assert await ws.receive_nothing(timeout=0.3)
    await close_all(ws)


@pytest.mark.parametrize(
    ("message", "words"),
    [
        ({"channel": "positions", "symbols": ["NOPEUSDT"]}, "NOPEUSDT"),
        ({"channel": "alerts", "symbols": ["NOPEUSDT"]}, "NOPEUSDT"),
        ({"channel": "positions", "symbols": [42]}, "symbols must be a list"),
        ({"channel": "alerts", "symbols": "BTCUSDT"}, "symbols must be a list"),
        ({"channel": "positions", "symbols": ["BTCUSDT", "ETHUSDT", "SOLUSDT"]}, "Too many symbols"),
        ({"channel": "accounts", "symbols": ["BTCUSDT"]}, "takes no symbols"),
        ({"channel": "risk-metrics", "symbols": ["BTCUSDT"]}, "takes no symbols"),
    ],
)
async def test_an_unknown_or_garbage_symbol_on_an_etrms_channel_is_an_error_frame(trader, settings, message, words):
    settings.WS_MAX_SYMBOLS = 2
    ws = await connect(trader)
    error = await send(ws, {"action": "subscribe", **message})
    assert error["type"] == "error" and error["channel"] == message["channel"] and words in error["message"]
    ack = await send(ws, {"action": "ping"})
    assert ack["type"] == "pong"  # still open, and subscribed to nothing
    assert hub_current().connections[next(iter(hub_current().connections))].subscriptions() == []
    await close_all(ws)
