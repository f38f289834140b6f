"""Pre-trade check benchmark (issue 15, SPEC §12): `POST /api/v1/risk/check-order` for a
user with 100 positions and 50 limits, in process and through the web tier, against
`GET /auth/me` on the same server in the same run.

    .venv/bin/python bench/check_order.py [--checks 2000] [--duration 10] [--no-rest]

1. In process: `order_check(user_id=..., order=...)`, the service behind the endpoint,
   `--checks` times after a warm-up, for an order with a price and one priced at the
   mark; printed p50, p99 and max in milliseconds and the queries of one warm check.
   Target: p99 <= 5 ms.
2. Through the web tier (`bench.rest_baseline`: one daphne process, 32 concurrent
   clients, rate limits lifted): the baseline `GET /auth/me`, then the check; printed
   requests/s and latencies. Target: p99 within 2x of the baseline's.

The user is `bench.evaluate`'s 100 x 50 book (five exchanges, one paper) with the
default configuration's desk caps, so each check loads desk totals too; the order is a
BTCUSDT buy on paper with one resting paper order on that symbol. The order rate cap is
off (`max_orders_per_minute` null), or every check after the cap would be refused.
"""

import argparse
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.environment import BenchError, bench_token, django_setup, redis_running  # noqa: E402
from bench.rest_baseline import BASELINE_PATH  # noqa: E402
from bench.server import running_server  # noqa: E402
from bench.wrk import format_table, measure  # noqa: E402

POSITIONS, LIMITS = 100, 50
TARGET_P99_MS = 5
TARGET_WEB_RATIO = 2
ORDER = {"exchange": "paper", "symbol": "BTCUSDT", "side": "buy", "quantity": "0.01", "price": "60000"}


def book_prepare():
    """The 100 x 50 user, a paper wallet and a resting BTCUSDT order on paper."""
    from accounts.models import ExchangeAccount
    from accounts.services.paper import paper_order_execute, paper_price_set, paper_wallet_ensure
    from bench.evaluate import book_build
    from risk.services.config import global_config_update

    global_config_update(actor=None, max_price_age_seconds=3600, max_orders_per_minute=None)
    user = book_build(positions=POSITIONS, limits=LIMITS)
    account = ExchangeAccount.objects.get(user=user, exchange="paper")
    paper_wallet_ensure(account=account)
    paper_price_set(symbol="BTCUSDT", price=Decimal(60000))
    paper_order_execute(
        account_id=account.pk, symbol="BTCUSDT", side="buy", amount=Decimal("0.01"), type="limit", price=Decimal(50000)
    )
    return user


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def in_process(user, *, checks: int, priced: bool) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from risk.services.check_order import order_check
    from risk.services.check_order_rules import OrderRequest

    body = dict(ORDER) if priced else {k: v for k, v in ORDER.items() if k != "price"}
    order = OrderRequest(
        exchange=body["exchange"],
        symbol=body["symbol"],
        side=body["side"],
        quantity=Decimal(body["quantity"]),
        price=Decimal(body["price"]) if priced else None,
    )
    for _ in range(50):
        result = order_check(user_id=user.pk, order=order)
    if not result.allowed:
        raise BenchError(f"the bench order is refused: {result.reasons}")
    with CaptureQueriesContext(connection) as queries:
        order_check(user_id=user.pk, order=order)
    runs = []
    for _ in range(checks):
        started = time.perf_counter()
        order_check(user_id=user.pk, order=order)
        runs.append((time.perf_counter() - started) * 1000)
    return {
        "p50_ms": statistics.median(runs),
        "p99_ms": _percentile(runs, 0.99),
        "max_ms": max(runs),
        "checks": checks,
        "queries": len(queries),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checks", type=int, default=2000, help="in-process checks measured (default 2000)")
    parser.add_argument("--duration", type=int, default=10, help="seconds of each REST measurement (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of REST warm-up, not counted (default 2)")
    parser.add_argument("--no-rest", action="store_true", help="only the in-process timings")
    parser.add_argument("--no-pin", action="store_true", help="let daphne and wrk share the cores")
    args = parser.parse_args(argv)
    django_setup()
    with redis_running() as redis_note:
        print(f"redis: {redis_note}")
        return _run(args)


def _run(args) -> int:
    bench_token(migrate=True)
    from django.db import connection

    from risk.bootstrap import default_breakers_ensure

    default_breakers_ensure()
    user = book_prepare()
    print(f"database: {connection.vendor}; user {user.username}: {POSITIONS} positions, {LIMITS} limits")
    try:
        for priced in (True, False):
            timing = in_process(user, checks=args.checks, priced=priced)
            verdict = "meets" if timing["p99_ms"] <= TARGET_P99_MS else "MISSES"
            print(
                f"in process, {'with a price' if priced else 'at the mark'}: p50 {timing['p50_ms']:.2f} ms, "
                f"p99 {timing['p99_ms']:.2f} ms, max {timing['max_ms']:.2f} ms over {timing['checks']} checks, "
                f"{timing['queries']} queries a check "
                f"({verdict} p99 <= {TARGET_P99_MS} ms)"
            )
        if args.no_rest:
            return 0
        token = bench_token(username=user.username, migrate=False)
        with running_server(pin=not args.no_pin) as server:
            print(f"\nserver: {server.describe()}")
            common = {"server": server, "token": token, "duration": args.duration, "warmup": args.warmup}
            baseline = measure(BASELINE_PATH, **common)
            check = measure("/api/v1/risk/check-order", method="POST", body=ORDER, **common)
        print("REST, 32 concurrent clients, one daphne process (same run)")
        print(format_table([baseline, check]))
        ratio = check["p99_ms"] / baseline["p99_ms"]
        verdict = "meets" if ratio <= TARGET_WEB_RATIO else "MISSES"
        print(f"check-order p99 is {ratio:.1f}x the baseline's ({verdict} the within {TARGET_WEB_RATIO}x target)")
        return 0
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
