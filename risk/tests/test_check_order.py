"""The pre-trade check `POST /api/v1/risk/check-order` (issue 15) on the paper exchange:
each breach reason at, just below and just above its threshold, resting orders counted,
the mark when no price is given, the trading state's admission rules at each level,
trading_enabled, and the order rate shared by two processes."""

import json
import os
import subprocess
import sys
from decimal import Decimal

import pytest

from accounts.services.paper import paper_order_execute, paper_price_set
from accounts.services.sync import account_sync
from risk.models import ExchangeConfig, GlobalConfig, SymbolConfig
from risk.services import assess
from risk.services.check_order import RATE_KEY, order_rules_cache_clear
from risk.services.snapshots import book_load
from risk.services.trading_state import trading_state_set
from risk.tests.factories import RiskLimitFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_caps", "no_breakers", "_rules_fresh")]

URL = "/api/v1/risk/check-order"
D = Decimal


@pytest.fixture
def _rules_fresh():
    """The check caches limits, rules and trading states per index version, which only
    the services' after-commit bump moves (never inside a test transaction): as the root
    conftest does for the configuration, any save or delete here drops that cache."""
    from django.db.models.signals import post_delete, post_save

    from risk.models import RiskLimit, TradingState

    def clear(**kwargs):
        order_rules_cache_clear()

    models = (RiskLimit, TradingState, SymbolConfig, ExchangeConfig, GlobalConfig)
    for model in models:
        post_save.connect(clear, sender=model, weak=False, dispatch_uid=f"check-order-{model.__name__}")
        post_delete.connect(clear, sender=model, weak=False, dispatch_uid=f"check-order-del-{model.__name__}")
    order_rules_cache_clear()
    yield
    for model in models:
        post_save.disconnect(sender=model, dispatch_uid=f"check-order-{model.__name__}")
        post_delete.disconnect(sender=model, dispatch_uid=f"check-order-del-{model.__name__}")
    order_rules_cache_clear()


@pytest.fixture
def account(trader, make_exchange_account):
    """Long 0.1 BTCUSDT at 60,000 (notional 6,000) on paper, synced."""
    account = make_exchange_account(trader, "paper")
    paper_price_set(symbol="BTCUSDT", price=D(60000))
    paper_order_execute(account_id=account.pk, symbol="BTCUSDT", side="buy", amount=D("0.1"))
    account_sync(account=account)
    return account


def check(client, **order):
    body = {"exchange": "paper", "symbol": "BTCUSDT", "side": "buy", **order}
    response = client.post(URL, {k: str(v) if isinstance(v, Decimal) else v for k, v in body.items()}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def rest(account, side: str, amount: str, price: str) -> None:
    """A limit order that rests on paper's book (not marketable at 60,000)."""
    paper_order_execute(
        account_id=account.pk, symbol="BTCUSDT", side=side, amount=D(amount), type="limit", price=D(price)
    )


def test_position_size_at_just_below_and_just_above_the_limit(trader, trader_client, account):
    limit = RiskLimitFactory(user=trader, symbol="BTCUSDT", threshold_value=D(10000), warning_value=None)
    below = check(trader_client, quantity="0.099", price="40000")  # 6,000 + 3,960 = 9,960
    assert below == {"allowed": True, "reasons": [], "breaches": []}

    at = check(trader_client, quantity="0.1", price="40000")  # 10,000
    assert at["allowed"] is False
    assert at["breaches"] == [
        {
            "limit_id": str(limit.id),
            "source": "limit",
            "limit_type": "position_size",
            "current_value": "6000.00",
            "after_value": "10000.00",
            "threshold": "10000.00",
        }
    ]
    assert at["reasons"] == [
        "Your BTCUSDT position size would be 10,000.00 after this order (now 6,000.00), "
        "at or above your limit of 10,000.00."
    ]
    above = check(trader_client, quantity="0.101", price="40000")
    assert above["allowed"] is False and above["breaches"][0]["after_value"] == "10040.00"
    # An order that shrinks the position is never refused for its size.
    assert check(trader_client, side="sell", quantity="0.05")["allowed"] is True


def test_resting_orders_on_the_same_side_count_against_the_limit(trader, trader_client, account):
    RiskLimitFactory(user=trader, symbol=None, threshold_value=D(10000), warning_value=None)
    rest(account, "buy", "0.05", "50000")  # 2,500 resting
    rest(account, "sell", "0.05", "70000")  # the other side: does not grow a long
    assert check(trader_client, quantity="0.037", price="40000")["allowed"] is True  # 6,000 + 1,480 + 2,500
    refused = check(trader_client, quantity="0.038", price="40000")  # 10,020
    assert refused["allowed"] is False and refused["breaches"][0]["after_value"] == "10020.00"


def test_total_exposure_and_leverage_at_just_below_and_just_above(trader, trader_client, account):
    metrics = assess.metrics_compute(book_load(user_id=trader.pk))
    exposure_limit = RiskLimitFactory(
        user=trader, symbol=None, limit_type="total_exposure", threshold_value=D(9000), warning_value=None
    )
    assert check(trader_client, quantity="0.0749", price="40000")["allowed"] is True  # 8,996
    at = check(trader_client, quantity="0.075", price="40000")  # 9,000
    assert [b["limit_id"] for b in at["breaches"]] == [str(exposure_limit.id)]
    assert check(trader_client, quantity="0.0751", price="40000")["allowed"] is False
    exposure_limit.delete()

    threshold = (D(6000) + D(2000)) / metrics.equity
    leverage = RiskLimitFactory(
        user=trader, symbol=None, limit_type="leverage", threshold_value=threshold, warning_value=None
    )
    assert check(trader_client, quantity="0.0499", price="40000")["allowed"] is True
    at = check(trader_client, quantity="0.05", price="40000")
    assert at["allowed"] is False and at["breaches"][0]["limit_type"] == "leverage"
    assert at["breaches"][0]["limit_id"] == str(leverage.id)
    assert at["reasons"][0].startswith("Your leverage would be")
    assert check(trader_client, quantity="0.0501", price="40000")["allowed"] is False


def test_the_mark_prices_an_order_without_a_price_and_the_per_order_cap(trader, trader_client, make_exchange_account):
    make_exchange_account(trader, "paper")
    paper_price_set(symbol="BTCUSDT", price=D(60000))
    SymbolConfig.objects.create(symbol="BTCUSDT", max_order_notional=D(3000))
    assert check(trader_client, quantity="0.0499")["allowed"] is True  # 2,994 at the mark
    assert check(trader_client, quantity="0.05")["allowed"] is True  # 3,000: at the cap is allowed
    above = check(trader_client, quantity="0.0501")  # 3,006
    assert above["allowed"] is False
    assert above["breaches"] == [
        {
            "limit_id": None,
            "source": "config",
            "limit_type": "max_order_notional",
            "current_value": None,
            "after_value": "3006.00",
            "threshold": "3000.00",
        }
    ]
    assert "above the desk's per-order cap of 3,000.00 for BTCUSDT" in above["reasons"][0]


def test_desk_caps_count_after_the_order(trader, trader_client, account):
    config = GlobalConfig.objects.get()
    config.max_total_exposure = D(8000)
    config.save()
    assert check(trader_client, quantity="0.0499", price="40000")["allowed"] is True
    refused = check(trader_client, quantity="0.05", price="40000")
    assert refused["breaches"][0]["source"] == "config" and refused["breaches"][0]["limit_id"] is None
    assert "at or above the desk cap of 8,000.00" in refused["reasons"][0]


@pytest.mark.parametrize("level", ["desk", "exchange", "user"])
def test_halted_at_each_level_refuses_everything(trader, officer, trader_client, account, level):
    scope = {"desk": {}, "exchange": {"exchange": "paper"}, "user": {"user_id": trader.pk}}[level]
    trading_state_set(actor=officer, level=level, state="halted", reason="incident 42", **scope)
    for order in ({"quantity": "0.01"}, {"side": "sell", "quantity": "0.05", "reduce_only": True}):
        body = check(trader_client, **order)
        assert body["allowed"] is False
        assert body["reasons"][0] == (
            f"Trading is halted at the {level} level (incident 42): only cancels are allowed."
        )


@pytest.mark.parametrize("level", ["desk", "exchange", "user"])
def test_reducing_at_each_level_allows_only_orders_that_shrink(trader, officer, trader_client, account, level):
    scope = {"desk": {}, "exchange": {"exchange": "paper"}, "user": {"user_id": trader.pk}}[level]
    trading_state_set(actor=officer, level=level, state="reducing", reason="month end", **scope)
    grow = check(trader_client, quantity="0.01")
    assert grow["allowed"] is False and grow["reasons"][0].startswith(f"Trading is reducing at the {level} level")
    assert check(trader_client, side="sell", quantity="0.1")["allowed"] is True  # exactly the position
    assert check(trader_client, side="sell", quantity="0.1001")["allowed"] is False  # would flip it short
    rest(account, "sell", "0.05", "70000")  # resting on the reducing side
    assert check(trader_client, side="sell", quantity="0.05")["allowed"] is True
    assert check(trader_client, side="sell", quantity="0.0501")["allowed"] is False


def test_an_exchange_level_applies_to_that_exchange_only(trader, officer, trader_client, account, binance_server):
    trading_state_set(actor=officer, level="exchange", exchange="binanceusdm", state="halted", reason="venue")
    assert check(trader_client, quantity="0.01")["allowed"] is True


def test_reduce_only_that_would_not_reduce_is_refused(trader_client, account):
    body = check(trader_client, quantity="0.01", reduce_only=True)
    assert body["allowed"] is False and body["reasons"][0].startswith("This reduce-only order would not reduce")
    assert check(trader_client, side="sell", quantity="0.1", reduce_only=True)["allowed"] is True


@pytest.mark.parametrize("model", [SymbolConfig, ExchangeConfig])
def test_trading_disabled_by_symbol_or_exchange_config_allows_only_shrinking(trader_client, account, model):
    if model is SymbolConfig:
        SymbolConfig.objects.create(symbol="BTCUSDT", trading_enabled=False)
        words = "Trading in BTCUSDT is disabled by the desk"
    else:
        ExchangeConfig.objects.create(exchange="paper", trading_enabled=False)
        words = "Trading on paper is disabled by the desk"
    body = check(trader_client, quantity="0.01")
    assert body["allowed"] is False and body["reasons"][0].startswith(words)
    assert check(trader_client, side="sell", quantity="0.1")["allowed"] is True


def _take_in_another_process(user_id, cap: int) -> list:
    code = (
        "import django, json, sys; django.setup();"
        "from risk.services.check_order import order_rate_take;"
        f"print(json.dumps(order_rate_take(user_id='{user_id}', cap={cap})))"
    )
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="etrms.settings")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_order_rate_cap_is_shared_by_two_processes_and_counts_allowed_checks_only(trader, trader_client, account):
    from etrms.redis_client import platform_redis

    platform_redis().delete(RATE_KEY.format(user_id=trader.pk))
    config = GlobalConfig.objects.get()
    config.max_orders_per_minute = 3
    config.save()
    RiskLimitFactory(user=trader, symbol="BTCUSDT", threshold_value=D(10000), warning_value=None)
    assert check(trader_client, quantity="0.01")["allowed"] is True  # 1
    assert check(trader_client, quantity="1")["allowed"] is False  # refused by the limit: not counted
    assert _take_in_another_process(trader.pk, 3) == [True, 2]  # another process takes the 2nd
    assert check(trader_client, quantity="0.01")["allowed"] is True  # 3: at the cap
    refused = check(trader_client, quantity="0.01")  # a 4th: above
    assert refused["allowed"] is False
    assert refused["reasons"] == ["Order rate: 3 orders were allowed in the last minute, the desk's cap is 3 a minute."]
    assert refused["breaches"][0]["limit_type"] == "max_orders_per_minute"
    assert _take_in_another_process(trader.pk, 3) == [False, 3]


def test_bad_bodies_and_a_missing_account_are_rejected(trader_client, account, make_user, api_client_for):
    bad = trader_client.post(
        URL, {"exchange": "paper", "symbol": "BTCUSDT", "side": "hold", "quantity": "1"}, format="json"
    )
    assert bad.status_code == 400
    body = {"exchange": "paper", "symbol": "BTCUSDT", "side": "buy", "quantity": "0", "price": "1"}
    assert trader_client.post(URL, body, format="json").status_code == 400
    body = {"exchange": "paper", "symbol": "BTCUSDT", "side": "buy", "quantity": "1", "leverage": 5}
    assert trader_client.post(URL, body, format="json").status_code == 400
    other = api_client_for(make_user())
    body = {"exchange": "paper", "symbol": "BTCUSDT", "side": "buy", "quantity": "1"}
    assert other.post(URL, body, format="json").status_code == 404


def test_resting_orders_come_from_the_venue_on_binance(trader, trader_client, make_exchange_account, binance_server):
    make_exchange_account(trader, "binanceusdm")
    binance_server.add_open_order("BTCUSDT", "BUY", "0.05", price="50000")  # 2,500 resting
    RiskLimitFactory(user=trader, symbol="BTCUSDT", threshold_value=D(10000), warning_value=None)
    body = {"exchange": "binanceusdm"}
    assert check(trader_client, quantity="0.1874", price="40000", **body)["allowed"] is True  # 7,496 + 2,500
    refused = check(trader_client, quantity="0.1875", price="40000", **body)  # 7,500 + 2,500: at
    assert refused["allowed"] is False and refused["breaches"][0]["after_value"] == "10000.00"
