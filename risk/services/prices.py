"""Price samples for the volatility breaker: per (exchange, symbol) a Redis sorted set
of `<ms>:<price>` members scored by time, shared by every process (web, worker, feed).

Every evaluation records the marks it sees; the feed records each tick. Samples older
than the longest window any breaker may use are trimmed on write.
"""

import time
from decimal import Decimal

from etrms.redis_client import platform_redis
from risk.services.breaker_params import VOLATILITY_WINDOW_RANGE

KEY_PREFIX = "risk:prices:"
RETENTION_SECONDS = VOLATILITY_WINDOW_RANGE[1]


def _key(exchange: str, symbol: str) -> str:
    return f"{KEY_PREFIX}{exchange}:{symbol}"


def price_samples_record(samples: list[tuple[str, str, Decimal, float]]) -> None:
    """Record `(exchange, symbol, price, unix_seconds)` samples (one pipeline)."""
    if not samples:
        return
    now = time.time()
    pipe = platform_redis().pipeline(transaction=False)
    keys = set()
    for exchange, symbol, price, at in samples:
        key = _key(exchange, symbol)
        pipe.zadd(key, {f"{int(at * 1000)}:{price}": at})
        keys.add(key)
    for key in keys:
        pipe.zremrangebyscore(key, "-inf", now - RETENTION_SECONDS)
        pipe.expire(key, RETENTION_SECONDS)
    pipe.execute()


def price_ranges_get(requests: set[tuple[str, str, int]], *, now: float | None = None) -> dict:
    """{(exchange, symbol, window): (low, high, span_seconds)} over the last `window`
    seconds, for each request that has at least two samples (one pipeline)."""
    if not requests:
        return {}
    now = time.time() if now is None else now
    ordered = sorted(requests)
    pipe = platform_redis().pipeline(transaction=False)
    for exchange, symbol, window in ordered:
        pipe.zrangebyscore(_key(exchange, symbol), now - window, "+inf", withscores=True)
    ranges = {}
    for request, members in zip(ordered, pipe.execute(), strict=True):
        if len(members) < 2:
            continue
        prices = [Decimal(member.decode().split(":", 1)[1]) for member, _ in members]
        span = members[-1][1] - members[0][1]
        ranges[request] = (min(prices), max(prices), span)
    return ranges
