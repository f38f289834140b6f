"""The platform's Redis connection (rate limits, heartbeats, registries, counters).

One pool per process, sized explicitly (redis-py's default pool is too small for a
daphne process with hundreds of sockets, see SPEC stack facts).
"""

from functools import cache

import redis
import redis.asyncio
from django.conf import settings


@cache
def platform_redis() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_PLATFORM_URL,
        max_connections=settings.REDIS_MAX_CONNECTIONS,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
    )


def redis_ping(url: str) -> None:
    """Raise if the Redis at `url` does not answer within two seconds."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    finally:
        client.close()
