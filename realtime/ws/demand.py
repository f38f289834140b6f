"""On-demand markets (SPEC §7): a ticker/trades subscription to a listed symbol that
nobody monitors makes the feed stream it while it has subscribers.

The sorted set `etrms:feed:demand` (platform database) holds `exchange|SYMBOL|hub`
members scored with their expiry (unix seconds). Each hub refreshes its own at every
heartbeat and removes them when its last local subscriber leaves; a dead hub's lapse
after `WS_REGISTRY_TTL_SECONDS`. When a hub's demand changes it PUBLISHes on the
monitoring channel, so the feed reloads its markets at once.
"""

import time

from accounts.services.monitoring import MONITORING_CHANNEL

DEMAND_KEY = "etrms:feed:demand"


def member(exchange: str, symbol: str, proc_id: str) -> str:
    return f"{exchange}|{symbol}|{proc_id}"


async def demanded_markets(client) -> dict[str, list]:
    """{exchange: sorted symbols} demanded by live hubs (an async client; expired
    members are removed)."""
    now = time.time()
    await client.zremrangebyscore(DEMAND_KEY, "-inf", now)
    markets: dict[str, set] = {}
    for raw in await client.zrangebyscore(DEMAND_KEY, now, "+inf"):
        exchange, symbol, _ = (raw.decode() if isinstance(raw, bytes) else raw).split("|", 2)
        markets.setdefault(exchange, set()).add(symbol)
    return {exchange: sorted(symbols) for exchange, symbols in markets.items()}


def markets_merge(monitored: dict, demanded: dict) -> dict[str, list]:
    """The feed's markets: the monitored ones plus the demanded ones."""
    merged = {exchange: set(symbols) for exchange, symbols in monitored.items()}
    for exchange, symbols in demanded.items():
        merged.setdefault(exchange, set()).update(symbols)
    return {exchange: sorted(symbols) for exchange, symbols in merged.items()}


async def demand_refresh(client, *, proc_id: str, markets: set, ttl: float) -> None:
    """Keep this hub's demanded markets alive for `ttl` seconds (async client)."""
    if markets:
        expiry = time.time() + ttl
        await client.zadd(DEMAND_KEY, {member(exchange, symbol, proc_id): expiry for exchange, symbol in markets})


async def demand_set(client, *, proc_id: str, add: set, remove: set, ttl: float) -> None:
    """Add and remove this hub's demanded markets, then tell the feed."""
    pipe = client.pipeline(transaction=False)
    if add:
        expiry = time.time() + ttl
        pipe.zadd(DEMAND_KEY, {member(exchange, symbol, proc_id): expiry for exchange, symbol in add})
    if remove:
        pipe.zrem(DEMAND_KEY, *(member(exchange, symbol, proc_id) for exchange, symbol in remove))
    pipe.publish(MONITORING_CHANNEL, "demand")
    await pipe.execute()
