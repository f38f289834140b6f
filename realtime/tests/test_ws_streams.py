"""ETRMS streams on WebSockets (SPEC §7): alerts (live and replayed), positions, accounts
and risk metrics, each user's own; officers see the desk. Real Redis, real database
thread (committed rows: transactional tests)."""

import asyncio
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from accounts import selectors
from realtime.tests.test_ws_consumers import close_all, connect, receive, receive_until, send
from risk.services.alerts import AlertSpec, alert_raise
from risk.tests import books

pytestmark = pytest.mark.django_db(transaction=True)


def breaker_alert(user, *, name: str = "max_drawdown_exceeded", at=None):
    spec = AlertSpec(
        key=f"breaker:{name}:{time.monotonic_ns()}",
        alert_type="circuit_breaker",
        severity="critical",
        message="Position has exceeded maximum allowed drawdown",
        metadata={"breaker": name, "exchange": "paper", "symbol": "BTCUSDT", "action_result": "Position closed"},
    )
    return alert_raise(user_id=user.pk, spec=spec, now=at)


async def test_two_users_same_symbol_same_channel_never_get_each_others_data(make_user):
    alice, bob = await sync_to_async(make_user)("alice"), await sync_to_async(make_user)("bob")
    for user, size in ((alice, "1"), (bob, "5")):
        account = await sync_to_async(books.account)(user)
        await sync_to_async(books.position)(account, "BTCUSDT", size=size, entry="60000")
    ws_alice, ws_bob = await connect(alice), await connect(bob)
    for ws in (ws_alice, ws_bob):
        await send(ws, {"action": "subscribe", "channel": "alerts"})
        await send(ws, {"action": "subscribe", "channel": "positions"})
    for ws, size in ((ws_alice, 1.0), (ws_bob, 5.0)):
        frame = await receive_until(ws, lambda frame: frame["channel"] == "positions")
        [item] = frame["data"]["positions_by_symbol"]["BTCUSDT"]["positions"]
        assert item["size"] == size and "user_id" not in item
    alert = await sync_to_async(breaker_alert)(bob)
    frame = await receive_until(ws_bob, lambda frame: frame["channel"] == "alerts")
    assert frame["data"]["id"] == str(alert.pk)
    assert await ws_alice.receive_nothing(timeout=0.5)
    await close_all(ws_alice, ws_bob)


async def test_ws_alerts_client_receives_a_breaker_trip_and_a_price_alert_within_a_second(trader):
    from realtime.services.price_alert_index import price_alerts_check_range
    from realtime.services.price_alerts import price_alert_create

    ws = await connect(trader, path="/api/v1/ws/alerts")
    await sync_to_async(price_alert_create)(
        user_id=trader.pk, symbol="BTCUSDT", condition="above", target_price=Decimal(61000), exchange="paper"
    )
    started = time.monotonic()
    breaker = await sync_to_async(breaker_alert)(trader)
    frame = await receive(ws, timeout=1)
    assert frame["id"] == str(breaker.pk) and frame["type"] == "circuit_breaker" and "channel" not in frame
    assert frame["condition_name"] == "max_drawdown_exceeded" and isinstance(frame["triggered_at"], int)
    assert time.monotonic() - started < 1
    started = time.monotonic()
    await sync_to_async(price_alerts_check_range)(
        exchange="paper", symbol="BTCUSDT", low=Decimal(60900), high=Decimal(61001), at=timezone.now()
    )
    frame = await receive(ws, timeout=1)
    assert frame["type"] == "price_alert" and frame["symbol"] == "BTCUSDT" and time.monotonic() - started < 1
    await ws.send_to(text_data="keep-alive")  # any text is a keep-alive
    assert await ws.receive_nothing(timeout=0.2)
    await close_all(ws)


async def test_since_alert_id_replays_later_alerts_in_order_then_streams_live(trader):
    now = timezone.now()
    first = await sync_to_async(breaker_alert)(trader, name="a", at=now - timedelta(seconds=30))
    second = await sync_to_async(breaker_alert)(trader, name="b", at=now - timedelta(seconds=20))
    third = await sync_to_async(breaker_alert)(trader, name="c", at=now - timedelta(seconds=10))
    ws = await connect(trader)
    ack = await send(ws, {"action": "subscribe", "channel": "alerts", "since_alert_id": str(first.pk)})
    assert ack["type"] == "ack" and ack["subscriptions"] == ["alerts"]
    replayed = [await receive(ws), await receive(ws)]
    assert [frame["data"]["id"] for frame in replayed] == [str(second.pk), str(third.pk)]
    assert all(frame["channel"] == "alerts" for frame in replayed)
    live = await sync_to_async(breaker_alert)(trader, name="d")
    assert (await receive(ws))["data"]["id"] == str(live.pk)
    await close_all(ws)

    ws = await connect(trader, path="/api/v1/ws/alerts", query=f"&since_alert_id={second.pk}")
    assert (await receive(ws))["id"] == str(third.pk)
    assert (await receive(ws))["id"] == str(live.pk)
    await close_all(ws)


async def test_since_alert_id_of_another_user_is_an_error(trader, make_user):
    other = await sync_to_async(make_user)("other")
    theirs = await sync_to_async(breaker_alert)(other)
    ws = await connect(trader)
    await send(ws, {"action": "subscribe", "channel": "alerts", "since_alert_id": str(theirs.pk)})  # the ack
    error = await receive(ws)
    assert error["type"] == "error" and error["channel"] == "alerts" and "since_alert_id" in error["message"]
    await close_all(ws)


async def test_officer_desk_alerts_carry_user_id_and_narrow_by_user_id(officer, make_user):
    alice, bob = await sync_to_async(make_user)("alice"), await sync_to_async(make_user)("bob")
    desk, narrowed = await connect(officer), await connect(officer)
    await send(desk, {"action": "subscribe", "channel": "alerts"})
    await send(narrowed, {"action": "subscribe", "channel": "alerts", "user_id": str(bob.pk)})
    await sync_to_async(breaker_alert)(alice)
    await sync_to_async(breaker_alert)(bob)
    seen = {(await receive(desk))["data"]["user_id"], (await receive(desk))["data"]["user_id"]}
    assert seen == {str(alice.pk), str(bob.pk)}
    assert (await receive(narrowed))["data"]["user_id"] == str(bob.pk)
    assert await narrowed.receive_nothing(timeout=0.3)
    await close_all(desk, narrowed)


async def test_a_trader_cannot_narrow_to_another_user(trader, make_user):
    other = await sync_to_async(make_user)("other")
    ws = await connect(trader)
    error = await send(ws, {"action": "subscribe", "channel": "positions", "user_id": str(other.pk)})
    assert error["type"] == "error" and error["channel"] == "positions"
    await close_all(ws)


async def test_positions_accounts_and_metrics_streams_match_rest_and_follow_marks(trader, settings):
    settings.WS_USER_STREAM_SECONDS = 0.2
    account = await sync_to_async(books.account)(trader, balance="10000")
    position = await sync_to_async(books.position)(account, "BTCUSDT", size="2", entry="100", mark="110")
    positions_ws = await connect(trader, path="/api/v1/ws/positions")
    accounts_ws = await connect(trader, path="/api/v1/ws/accounts")
    metrics_ws = await connect(trader, path="/api/v1/ws/risk-metrics")

    def rest_positions():
        found, exchanges = selectors.positions_view(user_id=trader.pk)
        return selectors.positions_payload(positions=found, exchanges=exchanges, include_user=False)

    assert await receive(positions_ws) == await sync_to_async(rest_positions)()
    accounts = await receive(accounts_ws)
    assert accounts["accounts"]["paper"]["balance"] == 10000.0
    metrics = (await receive(metrics_ws))["risk_metrics"]
    assert metrics["total_exposure"] == 220.0 and metrics["total_pnl"] == 20.0
    assert set(metrics) >= {"total_exposure", "max_drawdown", "total_pnl", "exchange_metrics", "symbol_metrics"}
    assert metrics["symbol_metrics"]["BTCUSDT"]["positions"] == 1

    from accounts.services.marks import positions_marks_update

    await sync_to_async(positions_marks_update)(
        exchange="paper", prices={"BTCUSDT": Decimal(90)}, at=timezone.now(), announce=False
    )
    moved = await receive(positions_ws, timeout=3)
    [item] = moved["positions_by_symbol"]["BTCUSDT"]["positions"]
    assert item["id"] == position.pk and item["mark_price"] == 90.0 and item["unrealized_pnl"] == -20.0
    metrics = (await receive(metrics_ws, timeout=3))["risk_metrics"]
    assert metrics["total_pnl"] == -20.0 and metrics["max_drawdown"] > 0
    await close_all(positions_ws, accounts_ws, metrics_ws)


async def test_officer_positions_stream_covers_the_desk_with_user_id(officer, make_user):
    alice, bob = await sync_to_async(make_user)("alice"), await sync_to_async(make_user)("bob")
    for user in (alice, bob):
        account = await sync_to_async(books.account)(user)
        await sync_to_async(books.position)(account, "ETHUSDT", size="1", entry="3000")
    ws = await connect(officer)
    await send(ws, {"action": "subscribe", "channel": "positions"})
    frame = await receive_until(ws, lambda frame: frame["channel"] == "positions")
    users = {item["user_id"] for item in frame["data"]["positions_by_symbol"]["ETHUSDT"]["positions"]}
    assert users == {str(alice.pk), str(bob.pk)}
    await close_all(ws)


async def test_a_position_change_is_pushed_without_waiting_for_the_round(trader, settings):
    settings.WS_USER_STREAM_SECONDS = 30  # only the announcement can wake the loop
    account = await sync_to_async(books.account)(trader)
    ws = await connect(trader, path="/api/v1/ws/positions")
    assert (await receive(ws))["positions_by_symbol"] == {}
    await asyncio.sleep(0.3)  # past the loop's minimum round
    await sync_to_async(books.position)(account, "SOLUSDT", size="3", entry="150")
    from accounts.events import positions_changed

    await sync_to_async(positions_changed)(user_ids={trader.pk}, exchange="paper", symbols={"SOLUSDT"})
    frame = await receive(ws, timeout=2)
    assert list(frame["positions_by_symbol"]) == ["SOLUSDT"]
    await close_all(ws)


async def test_risk_metrics_carry_the_users_effective_trading_state_and_follow_a_change(trader, officer, settings):
    """Issue 15 item 1: `risk-metrics` gains `trading_state`, the strictest of the desk
    and the user's own level; the desk view has the desk's and each user's."""
    from risk.services.trading_state import trading_state_set

    settings.WS_USER_STREAM_SECONDS = 0.2
    account = await sync_to_async(books.account)(trader, balance="10000")
    await sync_to_async(books.position)(account, "BTCUSDT", size="1", entry="100", mark="100")
    await sync_to_async(trading_state_set)(
        actor=officer, level="user", user_id=trader.pk, state="reducing", reason="over the desk's comfort"
    )
    metrics_ws = await connect(trader, path="/api/v1/ws/risk-metrics")
    assert (await receive(metrics_ws))["risk_metrics"]["trading_state"] == "reducing"

    await sync_to_async(trading_state_set)(actor=officer, level="desk", state="halted", reason="venue incident")
    metrics = await receive_until(metrics_ws, lambda frame: frame["risk_metrics"]["trading_state"] != "reducing")
    assert metrics["risk_metrics"]["trading_state"] == "halted"

    desk_ws = await connect(officer)
    await send(desk_ws, {"action": "subscribe", "channel": "risk-metrics"})
    frame = await receive_until(desk_ws, lambda frame: frame.get("channel") == "risk-metrics")
    assert frame["data"]["risk_metrics"]["trading_state"] == "halted"
    assert frame["data"]["risk_metrics"]["by_user"][str(trader.pk)]["trading_state"] == "halted"
    await close_all(metrics_ws, desk_ws)
