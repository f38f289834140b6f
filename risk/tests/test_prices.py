"""Volatility samples in Redis: summaries refreshed by every sample, candidates judged
against the lowest threshold, stale candidates computed again, a new floor re-judged."""

import time
from decimal import Decimal

import pytest

from etrms.redis_client import platform_redis
from risk.services import prices

D = Decimal
FLOORS = {60: D(5)}


def record(price, seconds_ago, symbol="BTCUSDT", floors=FLOORS):
    prices.price_samples_record([("paper", symbol, D(price), time.time() - seconds_ago)], floors=floors)


def test_a_market_becomes_a_candidate_only_with_coverage_and_range():
    record("100", 50)
    assert prices.price_ranges_get({("paper", "BTCUSDT", 60)}, floors=FLOORS) == {}  # one sample
    record("102", 40)
    assert prices.price_ranges_get({("paper", "BTCUSDT", 60)}, floors=FLOORS) == {}  # 2% < 5%
    record("106", 1)
    (found,) = prices.price_ranges_get({("paper", "BTCUSDT", 60)}, floors=FLOORS).values()
    low, high, span = found
    assert (low, high) == (D(100), D(106)) and span == pytest.approx(49, abs=0.5)
    members = platform_redis().smembers("risk:vol:cand:60:5")
    assert members == {b"paper:BTCUSDT"}


def test_a_stale_candidate_is_computed_again(monkeypatch):
    record("100", 55)
    record("110", 1)
    monkeypatch.setattr(prices, "FRESH_SECONDS", -1.0)  # every summary is too old to use as is
    ranges = prices.price_ranges_get({("paper", "BTCUSDT", 60)}, floors=FLOORS)
    assert ranges[("paper", "BTCUSDT", 60)][:2] == (D(100), D(110))
    # ten seconds on, the 100 sample has left the window: 110 alone cannot trip
    later = time.time() + 10
    assert prices.price_ranges_get({("paper", "BTCUSDT", 60)}, floors=FLOORS, now=later) == {}


def test_a_lower_floor_rejudges_every_summary():
    record("100", 50, floors={60: D(20)})
    record("108", 1, floors={60: D(20)})
    assert prices.price_ranges_get({("paper", "BTCUSDT", 60)}, floors={60: D(20)}) == {}
    ranges = prices.price_ranges_get({("paper", "BTCUSDT", 60)}, floors={60: D(5)})  # a breaker at 5%
    assert ranges[("paper", "BTCUSDT", 60)][:2] == (D(100), D(108))
    assert platform_redis().exists("risk:vol:cand:60:5:ready")


def test_samples_of_a_new_window_are_summarised_on_first_read():
    record("100", 250, floors={})
    record("130", 1, floors={})
    ranges = prices.price_ranges_get({("paper", "BTCUSDT", 300)}, floors={300: D(8)})
    assert ranges[("paper", "BTCUSDT", 300)][:2] == (D(100), D(130))
