"""Feed benchmark (SPEC §11, the feed row): ticks end to end through the real feed
(publish on Redis, caches, mark guard, conflation, the in-process RiskIndex evaluating
1,000 positions over 50 symbols against 1,000 enabled limits, marks persisted every
second), against a bare loop that only PUBLISHes the same ticks to the same Redis, in
the same run.

    .venv/bin/python bench/feed.py [--ticks 50000] [--rate 5000] [--crossings 200] [--history 300]

1. Throughput: `--ticks` ticks pushed into `Feed.on_ticker` as fast as the event loop
   takes them, over 50 symbols; the figure is ticks/s until the last one is published,
   cached and evaluated (batches conflate per symbol when evaluation is the slower).
2. Paced: `--rate` ticks/s for `--seconds`, with `--crossings` ticks in between that
   cross (and then clear) a position_size limit of one user; tick -> alert is measured
   from `on_ticker` to the alert's PUBLISH on `etrms:alerts`, which happens after the
   row is committed (p50/p99). Also printed: batches, conflated ticks.
3. Baseline: the same ticks, one awaited PUBLISH each, on the same Redis.

Runs on the configured stack (embedded SQLite + Redis by default; PostgreSQL and Redis
with DATABASE_URL / REDIS_URL). It (re)creates `bench-feed-*` users and their paper
positions, and stops monitoring for the run so that no venue streams beside it. Each
market starts with `--history` seconds of flat volatility samples (ten a second; the
default breaker's window is 300 s), as in a feed that has been running.
"""

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.environment import django_setup, redis_running  # noqa: E402

USERS, SYMBOLS, POSITIONS_PER_USER = 100, 50, 10
HOT_LIMIT, HOT_PRICE = Decimal(105), Decimal(106)  # a crossing within the mark guard's 10 %
LIMITS_PER_USER = 10
EXCHANGE = "paper"
HOT_SYMBOL = "S0000USDT"  # the crossing user's first symbol


def symbol(index: int) -> str:
    return f"S{index:04d}USDT"


def desk_build(history_seconds: float) -> str:
    """100 users x 10 positions (1,000 over 50 symbols) and 10 limits each (1,000);
    user 0 has a position_size limit on HOT_SYMBOL at 105 (its notional is 100 at 100).
    Returns user 0's id."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import AccountDay, Balance, ExchangeAccount, Position
    from accounts.services.monitoring import monitoring_stop
    from risk.bootstrap import default_breakers_ensure
    from risk.models import CircuitBreaker, RiskLimit
    from risk.services.config import global_config_update

    call_command("migrate", interactive=False, verbosity=0)
    User = get_user_model()
    now = timezone.now()
    with transaction.atomic():
        User.objects.filter(username__startswith="bench-feed-").delete()
        users = User.objects.bulk_create([User(username=f"bench-feed-{n:03d}") for n in range(USERS)])
        accounts = ExchangeAccount.objects.bulk_create(
            [ExchangeAccount(user=user, exchange=EXCHANGE, last_synced_at=now) for user in users]
        )
        Balance.objects.bulk_create(
            [
                Balance(account=a, balance=1_000_000, equity=1_000_000, peak_equity=1_000_000, updated_at=now)
                for a in accounts
            ]
        )
        AccountDay.objects.bulk_create(
            [AccountDay(account=a, date=datetime.now(UTC).date(), updated_at=now) for a in accounts]
        )
        positions, limits = [], []
        for n, (user, account) in enumerate(zip(users, accounts, strict=True)):
            for k in range(POSITIONS_PER_USER):
                name = symbol((n * 7 + k * 5) % SYMBOLS) if n else symbol(k)
                positions.append(
                    Position(
                        account=account,
                        symbol=name,
                        side="long",
                        size=Decimal(1),
                        entry_price=Decimal(100),
                        mark_price=Decimal(100),
                        mark_updated_at=now,
                        notional=Decimal(100),
                        best_price=Decimal(100),
                        peak_entry_notional=Decimal(100),
                        opened_at=now,
                    )
                )
                threshold = HOT_LIMIT if (n == 0 and k == 0) else Decimal("1e9")
                limits.append(
                    RiskLimit(
                        user=user, symbol=name, limit_type="position_size", threshold_value=threshold, set_by=user
                    )
                )
        Position.objects.bulk_create(positions)
        RiskLimit.objects.bulk_create(limits)
    samples_reset(history_seconds)
    default_breakers_ensure()  # the desk `make run` bootstraps
    enabled = CircuitBreaker.objects.filter(enabled=True).count()
    # Marks set up here stay fresh for the run; a crossing may re-raise the alert its
    # previous crossing resolved (every crossing is timed, none held by the cooldown).
    global_config_update(actor=None, max_price_age_seconds=3600, alert_cooldown_seconds=0)
    monitoring_stop()
    print(f"desk: {len(positions)} positions over {SYMBOLS} symbols, {len(limits)} limits, {enabled} breakers enabled")
    return str(users[0].pk)


def samples_reset(history_seconds: float) -> None:
    """Forget the volatility samples of the bench's markets (an earlier run's spikes,
    alert_latency.py's crossings, would trip every volatility breaker of this one), then
    give each a flat history at 100 of `history_seconds`, ten samples a second: the
    windows a feed that has run for a while holds, not the empty ones of a fresh start."""
    from risk.services import prices

    markets = [symbol(n) for n in range(SYMBOLS)]
    prices.price_samples_forget([f"{EXCHANGE}:{name}" for name in markets])
    now, count = time.time(), int(history_seconds * 10)
    for name in markets:
        prices.price_samples_record([(EXCHANGE, name, Decimal(100), now - (count - n) / 10) for n in range(count)])


def ticker(name: str, price: Decimal):
    from accounts.exchanges import Ticker

    return Ticker(name, price, None, None, None, None, None, None, None, None, datetime.now(UTC))


async def feed_running():
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


async def drained(feed) -> None:
    """Until every tick given so far is published and evaluated."""
    while feed.outbox or feed.batch.latest or feed.batch.ready.is_set():
        await asyncio.sleep(0.001)
    await feed.db(lambda: None)  # the batch in the worker thread, if any


async def throughput(feed, ticks: int) -> float:
    prices = {symbol(i): Decimal(100) for i in range(SYMBOLS)}
    names = list(prices)
    started = time.perf_counter()
    for n in range(ticks):
        name = names[n % SYMBOLS]
        prices[name] += Decimal(random.choice((-1, 1))) / 100
        await feed.on_ticker(EXCHANGE, ticker(name, prices[name]))
        if n % 200 == 0:
            await asyncio.sleep(0)  # let the loops run, as a stream's reads would
    await drained(feed)
    return ticks / (time.perf_counter() - started)


async def paced(feed, *, rate: int, seconds: float, crossings: int, user_id: str) -> dict:
    """Ticks at `rate`/s; `crossings` of them move HOT_SYMBOL across its limit (up, then
    back) and are timed to the alert's publication."""
    import redis.asyncio
    from django.conf import settings

    from risk.publish import REDIS_ALERTS_CHANNEL

    subscriber = redis.asyncio.Redis.from_url(settings.REDIS_PLATFORM_URL).pubsub()
    await subscriber.subscribe(REDIS_ALERTS_CHANNEL)
    sent: dict = {}  # alert type -> monotonic send time of the crossing tick waiting for it
    latencies: list = []

    async def listen():
        async for message in subscriber.listen():
            if message["type"] != "message":
                continue
            body = json.loads(message["data"])
            if body.get("user_id") != user_id:
                continue
            kind = body["alert"].get("status")
            started = sent.pop(kind, None)
            if started is not None:
                latencies.append((time.perf_counter() - started) * 1000)

    listener = asyncio.create_task(listen())
    total = int(rate * seconds)
    every = max(1, total // max(1, crossings))
    names = [symbol(i) for i in range(1, SYMBOLS)]
    # Every market at the price the paced ticks move around, evaluated before the clock
    # starts: the throughput run's random walk left them elsewhere, and that one-off move of
    # the whole desk is not the steady state measured here.
    for name in [HOT_SYMBOL, *names]:
        await feed.on_ticker(EXCHANGE, ticker(name, Decimal(100)))
    await drained(feed)
    batches_before, conflated_before = feed.batches, feed.batch.conflated
    started = time.perf_counter()
    high = False
    for n in range(total):
        due = started + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if n % every == every // 2 and not sent:
            high = not high
            sent["triggered" if high else "resolved"] = time.perf_counter()
            await feed.on_ticker(EXCHANGE, ticker(HOT_SYMBOL, HOT_PRICE if high else Decimal(100)))
        else:
            name = names[n % len(names)]
            await feed.on_ticker(EXCHANGE, ticker(name, Decimal(100) + Decimal(n % 7) / 100))
    await drained(feed)
    elapsed = time.perf_counter() - started
    await asyncio.sleep(0.2)
    listener.cancel()
    await subscriber.aclose()
    return {
        "ticks_per_second": total / elapsed,
        "latencies": latencies,
        "batches": feed.batches - batches_before,
        "conflated": feed.batch.conflated - conflated_before,
    }


async def bare_publish(ticks: int) -> float:
    import redis.asyncio
    from django.conf import settings

    from realtime.streams import TICKER_CHANNEL, ticker_frame

    client = redis.asyncio.Redis.from_url(settings.REDIS_PLATFORM_URL)
    names = [symbol(i) for i in range(SYMBOLS)]
    started = time.perf_counter()
    for n in range(ticks):
        frame = ticker_frame(exchange=EXCHANGE, ticker=ticker(names[n % SYMBOLS], Decimal(100)))
        await client.publish(TICKER_CHANNEL, frame)
    rate = ticks / (time.perf_counter() - started)
    await client.aclose()
    return rate


def percentile(values: list, share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


async def run(args) -> None:
    from asgiref.sync import sync_to_async

    user_id = await sync_to_async(desk_build)(args.history)
    feed, stop, task, client, listener = await feed_running()
    try:
        await throughput(feed, 2000)  # warm up: caches, prepared scripts, the index's first writes
        feed_rate = await throughput(feed, args.ticks)
        result = await paced(feed, rate=args.rate, seconds=args.seconds, crossings=args.crossings, user_id=user_id)
    finally:
        stop.set()
        await task
        await client.aclose()
        await listener.aclose()
    bare_rate = await bare_publish(args.ticks)
    latencies = result["latencies"]
    print()
    print("| what | figure |\n| --- | ---: |")
    print(f"| feed, end to end, unpaced | {feed_rate:,.0f} ticks/s |")
    print(f"| bare PUBLISH loop (baseline) | {bare_rate:,.0f} ticks/s |")
    print(f"| ratio feed / baseline | {feed_rate / bare_rate:.2f} |")
    print(f"| paced at {args.rate:,}/s for {args.seconds:g} s: kept | {result['ticks_per_second']:,.0f} ticks/s |")
    print(f"| evaluation batches / conflated ticks | {result['batches']:,} / {result['conflated']:,} |")
    print(
        f"| tick -> alert published after commit ({len(latencies)} crossings) | "
        f"p50 {percentile(latencies, 0.5):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms, "
        f"max {max(latencies, default=float('nan')):.1f} ms |"
    )
    print("\ntargets: >= 5,000 ticks/s sustained; tick -> alert row p99 <= 20 ms (SPEC §11)")
    if latencies:
        print(f"median of crossings {statistics.median(latencies):.1f} ms")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ticks", type=int, default=50_000)
    parser.add_argument("--rate", type=int, default=5_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--crossings", type=int, default=200)
    parser.add_argument("--history", type=float, default=300.0, help="seconds of samples each market starts with")
    args = parser.parse_args(argv)
    django_setup()
    from realtime.feed.service import feed_process_tune

    feed_process_tune()  # as manage.py run_feed does
    with redis_running():
        asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
