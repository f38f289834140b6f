"""WebSocket fan-out benchmark (SPEC §11, the ticker fan-out row): 1,000 subscribers of
one symbol on ONE daphne process, ticks PUBLISHed on the Redis ticker stream at a rising
rate; messages/s delivered and p50/p99 tick age (publish -> received by the client).
Baseline in the same run: a bare `websockets` broadcast server (one process, the same
Redis SUBSCRIBE, `websockets.broadcast` to every socket), the same clients and rates.

    .venv/bin/python bench/ws_fanout.py [--subscribers 1000] [--rates 10,20,40,60] [--seconds 5]

Each tick is a real ticker frame plus `sent` (publish time) and `step`; the clients (two
processes of 500 sockets, `websockets` asyncio) bucket ages by step. Each figure is
delivered messages over the step's duration. Both servers raise RLIMIT_NOFILE.
"""

import argparse
import asyncio
import json
import multiprocessing
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.environment import bench_token, django_setup, redis_running  # noqa: E402

SYMBOL = "BTCUSDT"
CLIENT_PROCESSES = 2
AGE_SAMPLES = 20_000  # per step and client process


def tick(step: int, n: int) -> str:
    return json.dumps(
        {
            "channel": "ticker",
            "symbol": SYMBOL,
            "exchange": "paper",
            "price": f"{60000 + n % 100}.00",
            "change_24h": "1.20",
            "volume_24h": "1000.00",
            "timestamp": "2026-12-01T00:00:00.000Z",
            "step": step,
            "sent": time.time(),
        },
        separators=(",", ":"),
    )


# --- clients (subprocesses) --------------------------------------------------------------------
def clients_main(url: str, count: int, subscribe: bool, ready, results) -> None:
    from realtime.testing import raise_nofile

    raise_nofile()
    asyncio.run(_clients(url, count, subscribe, ready, results))


async def _clients(url: str, count: int, subscribe: bool, ready, results) -> None:
    import websockets

    sockets = []
    for start in range(0, count, 100):
        sockets += await asyncio.gather(
            *(websockets.connect(url, open_timeout=60, max_queue=None) for _ in range(start, min(count, start + 100)))
        )
    if subscribe:
        message = json.dumps({"action": "subscribe", "channel": "ticker", "symbols": [SYMBOL]})
        for ws in sockets:
            await ws.send(message)
            await ws.recv()  # the ack
    counts: dict = {}
    ages: dict = {}
    finished = asyncio.Event()
    done = [0]

    async def read(ws):
        async for raw in ws:
            at = time.time()
            body = json.loads(raw)
            step = body.get("step")
            if step is None:
                continue
            if step < 0:
                done[0] += 1
                if done[0] == len(sockets):
                    finished.set()
                return
            counts[step] = counts.get(step, 0) + 1
            bucket = ages.setdefault(step, [])
            if len(bucket) < AGE_SAMPLES or counts[step] % 10 == 0:
                bucket.append((at - body["sent"]) * 1000)

    readers = [asyncio.create_task(read(ws)) for ws in sockets]
    ready.set()
    await finished.wait()
    results.put({"counts": counts, "ages": {step: values[-AGE_SAMPLES:] for step, values in ages.items()}})
    for task in readers:
        task.cancel()
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


# --- the baseline server (subprocess) ------------------------------------------------------------
def baseline_main(port: int, redis_url: str) -> None:
    from realtime.testing import raise_nofile

    raise_nofile()
    asyncio.run(_baseline(port, redis_url))


async def _baseline(port: int, redis_url: str) -> None:
    import redis.asyncio
    import websockets

    from realtime.streams import TICKER_CHANNEL

    clients: set = set()

    async def handler(ws):
        clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    async with websockets.serve(handler, "127.0.0.1", port, max_queue=None):
        pubsub = redis.asyncio.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(TICKER_CHANNEL)
        async for message in pubsub.listen():
            if message["type"] == "message":
                websockets.broadcast(clients, message["data"].decode())


# --- the run -----------------------------------------------------------------------------------
def measure(name: str, url: str, *, subscribe: bool, subscribers: int, rates: list, seconds: float) -> list:
    import redis
    from django.conf import settings

    from realtime.streams import TICKER_CHANNEL

    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    per = subscribers // CLIENT_PROCESSES
    readies, processes = [], []
    for _ in range(CLIENT_PROCESSES):
        ready = context.Event()
        process = context.Process(target=clients_main, args=(url, per, subscribe, ready, results))
        process.start()
        readies.append(ready)
        processes.append(process)
    for ready in readies:
        assert ready.wait(180), "clients did not connect"
    client = redis.Redis.from_url(settings.REDIS_PLATFORM_URL)
    time.sleep(1)
    durations = []
    for step, rate in enumerate(rates):
        total = int(rate * seconds)
        started = time.perf_counter()
        for n in range(total):
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            client.publish(TICKER_CHANNEL, tick(step, n))
        durations.append(max(time.perf_counter() - started, total / rate))
        time.sleep(0.5)
    time.sleep(1)
    client.publish(TICKER_CHANNEL, tick(-1, 0))
    collected = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(30)
    rows = []
    for step, rate in enumerate(rates):
        delivered = sum(part["counts"].get(step, 0) for part in collected)
        ages = sorted(age for part in collected for age in part["ages"].get(step, []))
        rows.append(
            {
                "server": name,
                "ticks_per_second": rate,
                "messages_per_second": delivered / durations[step],
                "expected": rate * subscribers,
                "p50": ages[len(ages) // 2] if ages else float("nan"),
                "p99": ages[min(len(ages) - 1, int(len(ages) * 0.99))] if ages else float("nan"),
            }
        )
    return rows


def _table(rows: list) -> None:
    print("\n| server | ticks/s | messages/s delivered (of expected) | p50 age ms | p99 age ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| {row['server']} | {row['ticks_per_second']} | {row['messages_per_second']:,.0f} "
            f"({row['expected']:,}) | {row['p50']:.1f} | {row['p99']:.1f} |",
            flush=True,
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rates", default="10,20,40,60", help="ticks/s, one step each")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    rates = [int(rate) for rate in args.rates.split(",")]
    django_setup()
    from django.conf import settings

    from realtime.testing import DaphneProcess, free_port, raise_nofile

    raise_nofile()
    with redis_running():
        token = bench_token()
        server = DaphneProcess(env={"LOG_LEVEL": "WARNING"}).start()
        try:
            rows = measure(
                "daphne (ETRMS hub)",
                f"{server.ws_url}?token={token}",
                subscribe=True,
                subscribers=args.subscribers,
                rates=rates,
                seconds=args.seconds,
            )
        finally:
            server.stop()
        _table(rows)  # printed now: a baseline that fails under load does not take these with it
        port = free_port()
        context = multiprocessing.get_context("spawn")
        baseline = context.Process(target=baseline_main, args=(port, settings.REDIS_PLATFORM_URL))
        baseline.start()
        time.sleep(2)
        try:
            rows += measure(
                "bare websockets broadcast",
                f"ws://127.0.0.1:{port}/",
                subscribe=False,
                subscribers=args.subscribers,
                rates=rates,
                seconds=args.seconds,
            )
        finally:
            baseline.terminate()
            baseline.join(10)
    _table(rows)
    print("\n| ticks/s | ratio messages/s hub / baseline | ratio p99 hub / baseline |\n| ---: | ---: | ---: |")
    half = len(rows) // 2
    for hub, bare in zip(rows[:half], rows[half:], strict=True):
        print(
            f"| {hub['ticks_per_second']} | {hub['messages_per_second'] / bare['messages_per_second']:.2f} "
            f"| {hub['p99'] / bare['p99']:.2f} |"
        )
    print("\ntarget: >= 20,000 messages/s with p99 age <= 100 ms; stretch 40,000/s within one core (SPEC §11)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
