"""Liveness and counters in Redis: worker and beat heartbeats (keys with a TTL, so a
dead process disappears by itself) and per-worker job counters."""

import json
import time

from django.conf import settings

from etrms.redis_client import platform_redis

WORKER_KEY = "jobs:worker:{}"
WORKER_STATS_KEY = "jobs:worker-stats:{}"
WORKER_STATS_INDEX = "jobs:worker-stats"
BEAT_KEY = "jobs:beat"
STATS_TTL_SECONDS = 7 * 86400


def worker_heartbeat(*, hostname: str, started_at: float) -> None:
    ttl_ms = int(settings.JOB_WORKER_HEARTBEAT_SECONDS * 1000)
    payload = json.dumps({"hostname": hostname, "started_at": started_at, "seen_at": time.time()})
    client = platform_redis()
    pipe = client.pipeline(transaction=False)
    pipe.set(WORKER_KEY.format(hostname), payload, px=ttl_ms)
    pipe.zadd(WORKER_STATS_INDEX, {hostname: time.time()})
    pipe.execute()


def worker_gone(*, hostname: str) -> None:
    platform_redis().delete(WORKER_KEY.format(hostname))


def workers_alive() -> set[str]:
    client = platform_redis()
    keys = list(client.scan_iter(match=WORKER_KEY.format("*"), count=1000))
    return {key.decode().split(":", 2)[2] for key in keys}


def worker_alive(hostname: str) -> bool:
    return bool(platform_redis().exists(WORKER_KEY.format(hostname)))


def worker_count_job(*, hostname: str, succeeded: bool, seconds: float) -> None:
    key = WORKER_STATS_KEY.format(hostname)
    pipe = platform_redis().pipeline(transaction=True)
    pipe.hincrby(key, "processed", 1)
    pipe.hincrby(key, "succeeded" if succeeded else "failed", 1)
    pipe.hincrbyfloat(key, "total_seconds", seconds)
    pipe.expire(key, STATS_TTL_SECONDS)
    pipe.zadd(WORKER_STATS_INDEX, {hostname: time.time()})
    pipe.execute()


def worker_counters() -> dict[str, dict[str, float]]:
    """{hostname: {processed, succeeded, failed, total_seconds}} for workers seen this week."""
    client = platform_redis()
    client.zremrangebyscore(WORKER_STATS_INDEX, 0, time.time() - STATS_TTL_SECONDS)
    hostnames = [name.decode() for name in client.zrange(WORKER_STATS_INDEX, 0, -1)]
    pipe = client.pipeline(transaction=False)
    for hostname in hostnames:
        pipe.hgetall(WORKER_STATS_KEY.format(hostname))
    counters = {}
    for hostname, raw in zip(hostnames, pipe.execute(), strict=True):
        counters[hostname] = {
            "processed": int(raw.get(b"processed", 0)),
            "succeeded": int(raw.get(b"succeeded", 0)),
            "failed": int(raw.get(b"failed", 0)),
            "total_seconds": float(raw.get(b"total_seconds", 0.0)),
        }
    return counters


def beat_heartbeat(*, ttl_seconds: float) -> None:
    platform_redis().set(BEAT_KEY, json.dumps({"seen_at": time.time()}), px=int(ttl_seconds * 1000))


def beat_alive() -> bool:
    return bool(platform_redis().exists(BEAT_KEY))
