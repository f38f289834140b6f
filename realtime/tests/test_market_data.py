"""Read-through of the price and market-data caches through the exchange interface
(paper, and ccxt against the local Binance server), single-flight, 404s from the
markets, the default exchange, and the refresh_market_data job."""

import threading
from decimal import Decimal

import pytest
from django.core.cache import caches
from django.db import connection

from accounts.exchanges import ExchangeUnavailable
from realtime.handlers import refresh_market_data
from realtime.services.market_data import market_caches_put, market_data_get, price_get

pytestmark = pytest.mark.django_db
TICKER = "/fapi/v1/ticker/24hr"


def test_price_shape_on_paper(trader_client):
    body = trader_client.get("/api/v1/cache/price/btc-usdt").json()
    assert set(body) == {"symbol", "exchange", "price", "timestamp", "cached"}
    assert body["symbol"] == "BTCUSDT" and body["exchange"] == "paper" and body["cached"] is False
    assert Decimal(body["price"]) > 0 and "." in body["price"]
    assert body["timestamp"].endswith("Z")


def test_market_data_shape_on_paper(trader_client):
    body = trader_client.get("/api/v1/cache/market-data/ETHUSDT?exchange=paper").json()
    assert {"symbol", "price", "order_book", "recent_trades", "cached_at", "exchange", "cached"} <= set(body)
    assert body["symbol"] == "ETHUSDT" and body["cached"] is False
    bids, asks = body["order_book"]["bids"], body["order_book"]["asks"]
    assert len(bids) == 10 and isinstance(bids[0][0], float) and bids[0][0] < asks[0][0]
    trade = body["recent_trades"][0]
    assert set(trade) == {"price", "quantity", "time"} and isinstance(trade["price"], str)
    assert body["cached_at"].endswith("Z")
    again = trader_client.get("/api/v1/cache/market-data/ETHUSDT?exchange=paper").json()
    assert again["cached"] is True and again["cached_at"] == body["cached_at"]


def test_requires_auth(anon_client):
    assert anon_client.get("/api/v1/cache/price/BTCUSDT").status_code == 401
    assert anon_client.get("/api/v1/cache/market-data/BTCUSDT").status_code == 401


@pytest.mark.parametrize("path", ["price", "market-data"])
def test_unknown_symbol_and_exchange_are_404(trader_client, path, binance_server):
    response = trader_client.get(f"/api/v1/cache/{path}/DOGEUSDT?exchange=binanceusdm")
    assert response.status_code == 404
    assert response.json()["status"] == "error" and "DOGEUSDT" in response.json()["message"]
    assert binance_server.requests_to(TICKER) == []  # decided from the loaded markets
    assert trader_client.get(f"/api/v1/cache/{path}/BTCUSDT?exchange=nosuchvenue").status_code == 404
    assert trader_client.get(f"/api/v1/cache/{path}/DOGEUSDT").status_code == 404  # paper does not list it
    assert trader_client.get(f"/api/v1/cache/{path}/B*").status_code == 404


def test_exchange_defaults_to_the_first_monitored_one(trader_client, binance_server):
    from accounts.models import MonitoringState

    MonitoringState.objects.create(pk=1, running=True, exchanges=["binanceusdm", "paper"])
    binance_server.set_price("BTCUSDT", 65000)
    body = trader_client.get("/api/v1/cache/price/BTCUSDT").json()
    assert body["exchange"] == "binanceusdm" and body["price"] == "65000.00"
    MonitoringState.objects.filter(pk=1).update(running=False)
    assert trader_client.get("/api/v1/cache/price/BTCUSDT").json()["exchange"] == "paper"


def test_concurrent_misses_make_one_exchange_call(binance_server):
    binance_server.set_price("BTCUSDT", 61000)
    # The first ticker request answers slowly, so every reader misses while it runs.
    binance_server.fail_next(kind="timeout", delay=0.6, path=TICKER)
    results, errors = [], []
    start = threading.Barrier(8)

    def read():
        try:
            start.wait()
            results.append(price_get(symbol="BTCUSDT", exchange="binanceusdm"))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(binance_server.requests_to(TICKER)) == 1
    assert [result["price"] for result in results] == ["61000.00"] * 8
    assert sorted(result["cached"] for result in results) == [False] + [True] * 7


def test_a_failed_flight_answers_its_waiters_with_its_error():
    import time

    from realtime.services.single_flight import single_flight

    calls, outcomes = [], []

    def fetch():
        calls.append(1)
        time.sleep(0.3)
        raise ExchangeUnavailable("venue down", exchange="binanceusdm")

    def read():
        try:
            outcomes.append(single_flight(key="test:failing", peek=lambda: None, fetch=fetch))
        except Exception as exc:
            outcomes.append(exc)

    start = threading.Barrier(5)
    threads = [threading.Thread(target=lambda: (start.wait(), read())) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(calls) == 1
    assert len(outcomes) == 5 and all(isinstance(outcome, ExchangeUnavailable) for outcome in outcomes)
    assert all(outcome.status_code == 503 and "venue down" in str(outcome.detail) for outcome in outcomes)


def test_feed_writes_are_what_readers_get(trader_client):
    from datetime import UTC, datetime

    from accounts.exchanges import Ticker, Trade

    at = datetime(2025, 12, 16, 10, 0, tzinfo=UTC)
    btc = Ticker("BTCUSDT", Decimal("43250.5"), None, None, None, None, None, None, None, None, at)
    market_caches_put(exchange="paper", tickers={"BTCUSDT": btc}, trades={})
    body = trader_client.get("/api/v1/cache/price/BTCUSDT?exchange=paper").json()
    assert body == {
        "symbol": "BTCUSDT",
        "exchange": "paper",
        "price": "43250.50",
        "timestamp": "2025-12-16T10:00:00Z",
        "cached": True,
    }
    market_data_get(symbol="SOLUSDT", exchange="paper")  # a read-through leaves a book
    ticker = Ticker("SOLUSDT", Decimal("151.5"), None, None, None, None, None, None, None, None, at)
    trade = Trade("SOLUSDT", "7", Decimal("151.5"), Decimal("2"), "buy", at)
    market_caches_put(exchange="paper", tickers={"SOLUSDT": ticker}, trades={"SOLUSDT": [trade]})
    body = trader_client.get("/api/v1/cache/market-data/SOLUSDT?exchange=paper").json()
    assert body["price"] == "151.50" and body["cached"] is True
    assert body["recent_trades"] == [{"price": "151.50", "quantity": "2.00", "time": "2025-12-16T10:00:00Z"}]
    assert len(body["order_book"]["bids"]) == 10  # kept from the cache


# --- refresh_market_data ---------------------------------------------------------------------
def test_refresh_market_data_is_listed_and_officer_only(trader_client, officer_client):
    handlers = {h["name"]: h for h in trader_client.get("/api/v1/jobs/handlers").json()["handlers"]}
    assert handlers["refresh_market_data"]["officer_only"] is True
    assert set(handlers["refresh_market_data"]["args"]) == {"symbols", "exchange"}
    body = {"name": "refresh_market_data", "args": {"symbols": ["BTCUSDT"]}}
    assert trader_client.post("/api/v1/jobs/enqueue", body, format="json").status_code == 403
    bad = {"name": "refresh_market_data", "args": {"symbols": []}}
    assert officer_client.post("/api/v1/jobs/enqueue", bad, format="json").status_code == 400
    bad = {"name": "refresh_market_data", "args": {"symbols": ["BTCUSDT"], "exchange": "nope"}}
    assert officer_client.post("/api/v1/jobs/enqueue", bad, format="json").status_code == 400
    assert officer_client.post("/api/v1/jobs/enqueue", body, format="json").status_code == 200


def test_refresh_market_data_warms_both_caches(binance_server):
    binance_server.set_price("ETHUSDT", 3100)
    result = refresh_market_data(None, symbols=["BTCUSDT", "ETHUSDT", "DOGEUSDT"], exchange="binanceusdm")
    assert result["refreshed"] == ["BTCUSDT", "ETHUSDT"] and set(result["failed"]) == {"DOGEUSDT"}
    assert caches["price"].peek("binanceusdm:ETHUSDT")["price"] == "3100.00"
    assert caches["market_data"].peek("binanceusdm:BTCUSDT")["order_book"]["asks"]
    assert price_get(symbol="ETHUSDT", exchange="binanceusdm")["cached"] is True


def test_refresh_market_data_fails_when_the_venue_is_down(binance_server):
    binance_server.fail_next(status=503, path=TICKER, times=5)
    with pytest.raises(ExchangeUnavailable):
        refresh_market_data(None, symbols=["BTCUSDT"], exchange="binanceusdm")
