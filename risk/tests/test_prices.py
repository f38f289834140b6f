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


def rescanned(market, window, now):
    """A scan of every sample in the window, as the summary has it: (samples,) below two
    samples, else (samples, low, high, span); ties go to the earliest sample."""
    members = platform_redis().zrangebyscore(f"{prices.KEY_PREFIX}{market}", now - window, "+inf", withscores=True)
    if len(members) < 2:
        return (len(members),)
    texts = [member.decode().split(":", 1)[1] for member, _ in members]
    low = min(texts, key=D)  # min/max keep the first of equals
    high = max(texts, key=D)
    return len(members), low, high, members[-1][1] - members[0][1]


def summary_at(market, window, now):
    """The market's summary computed by the incremental script at `now` (the read path's
    refresh), as `rescanned` gives it."""
    refresh = prices._script("refresh", prices._REFRESH)
    (raw,) = refresh(keys=[prices.SUMMARY_KEY, f"{prices.KEY_PREFIX}{market}"], args=[repr(now), market, window, "5"])
    parts = raw.decode().split("|")
    if len(parts) == 2:
        return (int(parts[1]),)
    return int(parts[1]), parts[2], parts[3], float(parts[5]) - float(parts[4])


def test_incremental_summaries_match_a_full_rescan_as_samples_arrive_late_windows_change_and_time_moves_both_ways():
    import random

    rng = random.Random(11)
    floor_sets = [{60: D(5)}, {}, {30: D(5), 60: D(5)}, {30: D(1)}]
    markets = ["paper:BTCUSDT", "paper:ETHUSDT"]
    summarised = 0
    for step in range(300):
        base = time.time()
        samples = [
            (*rng.choice(markets).split(":"), D(rng.randint(9_000, 9_050)) / 100, base - rng.uniform(0, 90))
            for _ in range(rng.randint(1, 4))
        ]
        prices.price_samples_record(samples, floors=rng.choice(floor_sets))
        window, now = rng.choice([30, 60]), base + rng.uniform(-20, 40)
        for market in markets:
            expected, got = rescanned(market, window, now), summary_at(market, window, now)
            assert got[:3] == expected[:3] and got[3:] == pytest.approx(expected[3:]), step
            summarised += len(got) > 1
    assert summarised > 300


def test_forgotten_markets_start_again_from_their_next_samples():
    record("100", 50)
    record("120", 1)
    record("100", 50, symbol="ETHUSDT")
    record("120", 1, symbol="ETHUSDT")
    prices.price_samples_forget(["paper:BTCUSDT"])
    assert prices.price_ranges_get({("paper", "BTCUSDT", 60)}, floors=FLOORS) == {}
    record("101", 55)
    record("102", 1)  # 100 and 120 are gone: a 1 % range
    assert prices.price_ranges_get({("paper", "BTCUSDT", 60)}, floors={60: D("0.5")})[("paper", "BTCUSDT", 60)][:2] == (
        D(101),
        D(102),
    )
    assert ("paper", "ETHUSDT", 60) in prices.price_ranges_get({("paper", "ETHUSDT", 60)}, floors=FLOORS)
