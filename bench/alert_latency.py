"""Tick -> alert on `/ws/alerts` (SPEC §11, first row): the real feed in this process
(bench/feed.py's desk: 100 users, 1,000 positions over 50 symbols, 1,000 enabled limits)
evaluates ticks paced at `--rate`/s; every `--interval` s one tick moves a fresh symbol
across the position_size limits of the users whose first position it is (each crossing
raises new alerts: a resolved-then-re-raised alert would measure the engine's re-arm
rules, not delivery), by 6 %: within the mark guard's 10 % and the default volatility
breaker's 8 %, so that the figure is a limit's alert, not a storm of breaker trips (a
doubling price, as an earlier version of this bench used, trips the volatility breaker
of every holder once the windows hold five minutes of samples). 200 `/ws/alerts`
subscribers on one daphne process, spread over the 100 users; the figure is the time
from `on_ticker` of a crossing tick to each of its alert frames received by a
subscriber. Baseline in the same run: a Redis
PUBLISH -> SUBSCRIBE round trip on the same Redis.

    .venv/bin/python bench/alert_latency.py [--rate 1000] [--crossings 40] [--interval 0.25] [--subscribers 200]
"""

import argparse
import asyncio
import json
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.environment import django_setup, redis_running  # noqa: E402
from bench.feed import EXCHANGE, HOT_LIMIT, HOT_PRICE, SYMBOLS, desk_build, percentile, symbol, ticker  # noqa: E402


def limits_arm(crossings: int) -> None:
    """Every bench user's position_size limit on its first position's symbol at HOT_LIMIT
    (105; its notional is 100 at 100): a tick at HOT_PRICE (106) on one of the first
    `crossings` symbols breaches the limits of the users whose first position it is."""
    from risk.models import RiskLimit

    for n in range(1, 100):
        RiskLimit.objects.filter(user__username=f"bench-feed-{n:03d}", symbol=symbol((n * 7) % SYMBOLS)).update(
            threshold_value=HOT_LIMIT
        )


def tokens(subscribers: int) -> list[tuple[str, str]]:
    """(user id, access token) for `subscribers` sockets spread over the bench users."""
    from django.contrib.auth import get_user_model

    from etrms.api.auth import TokenObtainSerializer

    users = list(get_user_model().objects.filter(username__startswith="bench-feed-").order_by("username"))
    access = {user.pk: str(TokenObtainSerializer.get_token(user).access_token) for user in users}
    chosen = [users[n % len(users)] for n in range(subscribers)]
    return [(str(user.pk), access[user.pk]) for user in chosen]


async def feed_running():
    """The real feed (its mark guard as configured: a 6 % crossing is a mark)."""
    import redis.asyncio
    from django.conf import settings

    from realtime.feed.service import Feed

    client = redis.asyncio.Redis.from_url(settings.REDIS_PLATFORM_URL, max_connections=16)
    listener = redis.asyncio.Redis.from_url(settings.REDIS_PLATFORM_URL, max_connections=2)
    feed = Feed(redis_client=client, listener_client=listener, owns_process=True)  # as run_feed
    stop = asyncio.Event()
    task = asyncio.create_task(feed.run(stop))
    await asyncio.wait_for(feed.listening.wait(), timeout=60)
    return feed, stop, task, client, listener


async def redis_round_trips(count: int) -> list:
    import redis.asyncio
    from django.conf import settings

    client = redis.asyncio.Redis.from_url(settings.REDIS_PLATFORM_URL)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe("bench:ping")
    times = []
    for n in range(count):
        started = time.perf_counter()
        await client.publish("bench:ping", str(n))
        while (await pubsub.get_message(timeout=1)) is None:
            pass
        times.append((time.perf_counter() - started) * 1000)
    await pubsub.aclose()
    await client.aclose()
    return times


async def run(args) -> dict:
    import websockets
    from asgiref.sync import sync_to_async

    from realtime.testing import DaphneProcess

    await sync_to_async(desk_build)(args.history)
    await sync_to_async(limits_arm)(args.crossings)
    pairs = await sync_to_async(tokens)(args.subscribers)
    server = DaphneProcess(env={"LOG_LEVEL": "WARNING"}).start()
    url = server.ws_url + "/alerts"
    sockets = [await websockets.connect(f"{url}?token={token}") for _, token in pairs]
    feed, stop, task, client, listener = await feed_running()
    sent: dict = {}  # crossed symbol -> perf_counter of its crossing tick
    latencies: list = []

    async def read(ws):
        async for raw in ws:
            alert = json.loads(raw)
            started = sent.get(alert.get("symbol"))
            if started is not None and alert.get("status") == "triggered":
                now = time.perf_counter()
                latencies.append((now - started) * 1000)
                if alert["id"] in published_at:
                    delivery.append((now - published_at[alert["id"]]) * 1000)

    import redis.asyncio as aioredis
    from django.conf import settings

    from risk.publish import REDIS_ALERTS_CHANNEL

    published: list = []  # tick -> PUBLISH on etrms:alerts, the feed's share
    published_at: dict = {}
    delivery: list = []  # PUBLISH -> received on a socket, the WebSocket layer's share
    direct = aioredis.Redis.from_url(settings.REDIS_PLATFORM_URL).pubsub(ignore_subscribe_messages=True)
    await direct.subscribe(REDIS_ALERTS_CHANNEL)

    async def read_published():
        async for message in direct.listen():
            alert = json.loads(message["data"])["alert"]
            started = sent.get(alert.get("symbol"))
            if started is not None and alert.get("status") == "triggered":
                published_at[alert["id"]] = time.perf_counter()
                published.append((published_at[alert["id"]] - started) * 1000)

    readers = [asyncio.create_task(read(ws)) for ws in sockets] + [asyncio.create_task(read_published())]
    crossed = [symbol(i) for i in range(1, args.crossings + 1)]
    background = [symbol(i) for i in range(args.crossings + 1, SYMBOLS)]
    try:
        await asyncio.sleep(1)
        every = max(1, int(args.rate * args.interval))  # a crossing every `interval` seconds
        started = time.perf_counter()
        for n in range(every * args.crossings):
            delay = started + n / args.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if n % every == every // 2:
                name = crossed[n // every]
                sent[name] = time.perf_counter()
                await feed.on_ticker(EXCHANGE, ticker(name, HOT_PRICE))
            else:
                name = background[n % len(background)]
                await feed.on_ticker(EXCHANGE, ticker(name, Decimal(100) + Decimal(n % 7) / 100))
        await asyncio.sleep(1)
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        stop.set()
        await task
        await client.aclose()
        await listener.aclose()
        server.stop()
        await direct.aclose()
    return {
        "published": published,
        "delivery": delivery,
        "latencies": latencies,
        "baseline": await redis_round_trips(1000),
        "sockets": len(sockets),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=1000, help="background ticks/s")
    parser.add_argument("--crossings", type=int, default=40, help="symbols crossed, one at a time (at most 40)")
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between crossings")
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--history", type=float, default=300.0, help="seconds of samples each market starts with")
    args = parser.parse_args(argv)
    args.crossings = max(1, min(args.crossings, 40))  # the rest of the 50 symbols carry the background ticks
    django_setup()
    from realtime.feed.service import feed_process_tune

    feed_process_tune()  # as manage.py run_feed does
    from realtime.testing import raise_nofile

    raise_nofile()
    with redis_running():
        result = asyncio.run(run(args))
    alerts, baseline = result["latencies"], result["baseline"]
    p50, p99 = percentile(alerts, 0.5), percentile(alerts, 0.99)
    b50, b99 = percentile(baseline, 0.5), percentile(baseline, 0.99)
    print(f"\n{result['sockets']} /ws/alerts subscribers; {len(alerts)} alert frames timed")
    print("| what | p50 ms | p99 ms |\n| --- | ---: | ---: |")
    print(f"| tick -> alert received on /ws/alerts | {p50:.2f} | {p99:.2f} |")
    for label, values in (
        ("tick -> alert PUBLISHed by the feed (its share)", result["published"]),
        ("PUBLISH -> frame received (the WebSocket layer's share)", result["delivery"]),
    ):
        print(f"| {label} | {percentile(values, 0.5):.2f} | {percentile(values, 0.99):.2f} |")
    print(f"| Redis PUBLISH -> SUBSCRIBE round trip (baseline) | {b50:.2f} | {b99:.2f} |")
    print(f"| ratio | {p50 / b50:.1f} | {p99 / b99:.1f} |")
    print("\ntarget: p50 <= 10 ms, p99 <= 50 ms; stretch p99 <= 20 ms (SPEC §11)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
