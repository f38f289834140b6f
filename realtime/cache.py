"""SPEC §8's three cache types on Django's cache framework over Redis.

| cache type   | CACHES alias  | holds                                               | TTL                 |
| ------------ | ------------- | --------------------------------------------------- | ------------------- |
| market_data  | market_data   | `<exchange>:<SYMBOL>` -> ticker, order book, trades | CACHE_TTL_MARKET_DATA (300 s) |
| price        | price         | `<exchange>:<SYMBOL>` -> last price and its time    | CACHE_TTL_PRICE (60 s) |
| user_session | user_session  | Django's sessions (SESSION_ENGINE cache)            | the session's age   |

Each alias has its own key prefix (`etrms:<cache_type>`) on the cache database, so a
clear or an invalidation is SCAN + UNLINK within that prefix (see `cache_backend`);
reads count hits and misses in Redis. This module is the only place that knows the
aliases and key formats: the API, the job handler and the feed go through it.
"""

from django.conf import settings
from django.core.cache import caches
from redis import RedisError

from etrms.errors import Unavailable
from realtime.cache_backend import STATS_KEY, CountingRedisCache, escape_glob

MARKET_DATA, PRICE, USER_SESSION = "market_data", "price", "user_session"
CACHE_TYPES = (MARKET_DATA, USER_SESSION, PRICE)
ALL = "all"
SYMBOL_TYPES = (MARKET_DATA, PRICE)  # the types whose entries belong to a symbol
SESSION_KEY_PREFIX = "django.contrib.sessions.cache"  # Django's cache session backend
TTL_SAMPLE = 100  # keys whose TTL is sampled for avg_ttl_seconds


def cache_for(cache_type: str) -> CountingRedisCache:
    return caches[cache_type]


def symbol_key(*, exchange: str, symbol: str) -> str:
    return f"{exchange}:{symbol}"


def types_of(cache_type: str) -> tuple[str, ...]:
    return CACHE_TYPES if cache_type == ALL else (cache_type,)


def unavailable(exc: Exception) -> Unavailable:
    return Unavailable(f"The cache is unavailable: {exc.__class__.__name__}.")


# --- reads and writes of the symbol caches ------------------------------------------------
def cache_get(*, cache_type: str, exchange: str, symbol: str):
    """A counted read (hit or miss) of one symbol's entry."""
    return cache_for(cache_type).get(symbol_key(exchange=exchange, symbol=symbol))


def cache_peek(*, cache_type: str, exchange: str, symbol: str):
    """An uncounted read (a single-flight leader re-checking, a merge before a write)."""
    return cache_for(cache_type).peek(symbol_key(exchange=exchange, symbol=symbol))


def cache_put(*, cache_type: str, exchange: str, symbol: str, value) -> None:
    cache_for(cache_type).set(symbol_key(exchange=exchange, symbol=symbol), value)


# --- stats -------------------------------------------------------------------------------
def hit_counts() -> dict[str, tuple[int, int]]:
    """{cache_type: (hits, misses)} since the counters were last reset."""
    raw = cache_for(MARKET_DATA).redis().hgetall(STATS_KEY)
    counts = {key.decode(): int(value) for key, value in raw.items()}
    return {kind: (counts.get(f"{kind}:hits", 0), counts.get(f"{kind}:misses", 0)) for kind in CACHE_TYPES}


def hit_rate(hits: int, misses: int) -> float:
    """A ratio 0..1 (0.0 before the first read)."""
    return round(hits / (hits + misses), 4) if hits + misses else 0.0


def _keys_and_ttl(cache_type: str) -> tuple[int, float | None]:
    """How many keys the type holds (counted with SCAN) and the mean TTL of a sample."""
    cache = cache_for(cache_type)
    client = cache.redis()
    count, sample = 0, []
    for key in client.scan_iter(match=cache.pattern, count=1000):
        count += 1
        if len(sample) < TTL_SAMPLE:
            sample.append(key)
    if not sample:
        return count, None
    pipeline = client.pipeline(transaction=False)
    for key in sample:
        pipeline.ttl(key)
    ttls = [ttl for ttl in pipeline.execute() if ttl is not None and ttl > 0]
    return count, (round(sum(ttls) / len(ttls), 1) if ttls else None)


def cache_stats() -> dict:
    """Phase 4's `/cache/stats`: keys, hit_rate, avg_ttl_seconds per type, plus hits
    and misses."""
    counts = hit_counts()
    stats = {}
    for kind in CACHE_TYPES:
        keys, avg_ttl = _keys_and_ttl(kind)
        hits, misses = counts[kind]
        stats[f"{kind}_cache"] = {
            "keys": keys,
            "hit_rate": hit_rate(hits, misses),
            "avg_ttl_seconds": avg_ttl,
            "hits": hits,
            "misses": misses,
        }
    return stats


def cache_stats_reset() -> None:
    cache_for(MARKET_DATA).redis().delete(STATS_KEY)


def cache_health() -> tuple[bool, dict]:
    """(healthy, Phase 4's `/cache/health` body). Redis down -> unhealthy, never raises."""
    try:
        client = cache_for(MARKET_DATA).redis()
        client.ping()
        uptime = int(client.info("server").get("uptime_in_seconds", 0))
        counts = hit_counts()
    except (RedisError, OSError):
        return False, {"status": "unhealthy", "redis_connected": False, "uptime_seconds": None, "cache_hit_rate": None}
    hits = sum(pair[0] for pair in counts.values())
    misses = sum(pair[1] for pair in counts.values())
    return True, {
        "status": "healthy",
        "redis_connected": True,
        "uptime_seconds": uptime,
        "cache_hit_rate": hit_rate(hits, misses),
    }


# --- clearing and invalidation --------------------------------------------------------------
def cache_clear(*, cache_type: str) -> int:
    """Remove every key of `cache_type` (or of all three); how many were removed."""
    return sum(cache_for(kind).clear() for kind in types_of(cache_type))


def _entry_key(cache_type: str, key: str) -> str:
    # A user_session entry is named by its session key (what the session cookie holds).
    return f"{SESSION_KEY_PREFIX}{key}" if cache_type == USER_SESSION else key


def cache_invalidate(*, cache_type: str, symbols: list[str] | None = None, keys: list[str] | None = None) -> int:
    """Remove the entries of `symbols` (every exchange) and the entries named by `keys`
    within `cache_type` (or all three); the number of keys really removed."""
    removed = 0
    for kind in types_of(cache_type):
        cache = cache_for(kind)
        if symbols and kind in SYMBOL_TYPES:
            for symbol in symbols:
                removed += cache.unlink_matching(f"*:{escape_glob(symbol)}")
        if keys:
            removed += cache.unlink_keys([_entry_key(kind, key) for key in keys])
    return removed


def ttl_seconds(cache_type: str) -> int:
    return int(settings.CACHES[cache_type]["TIMEOUT"])
