"""Risk evaluation benchmark (SPEC §11, last row and the `POST /risk/evaluate` part of
the third): how evaluation time grows with the book, and the endpoint's requests/s
against the REST baseline in the same run.

    .venv/bin/python bench/evaluate.py [--repeats 5] [--duration 10] [--no-rest]

1. Evaluation time, in process, of one user's book of P positions and L limits for
   100x50, 1,000x100 and 10,000x1,000, with the default circuit breakers enabled (dry
   run) and the desk caps of the default configuration: `evaluation_run(user_id=...)`,
   the service behind the endpoint, the job and the event hook. Positions are spread
   over five exchanges and P/10 symbols, both sides (hedge mode); limits are one per
   symbol (position_size) plus one of each portfolio-wide type. Thresholds sit above
   the values, so the measured runs are the steady state (nothing to write); the first
   run, which records price samples and raises the desk-cap alerts, is reported apart.
   Printed: median and best of `--repeats` runs, and the growth ratio per 10x step.
   Baseline in the same run (SPEC §11): a raw DB-API read of the same book's rows that
   evaluation reads (the user's open positions, enabled limits, and accounts with their
   balances): `connection.cursor()`, three SELECTs, `fetchall()`, no ORM, no parsing.
   The steady state's rows do not change, so evaluation reuses what it parsed from them
   (risk.services.request_memo); `--repeats` more runs each follow a moved mark (one
   position's row written first, as a tick would), which parse the book again.
   Printed per size: evaluation and raw read (median and best) and their ratio; the
   target is 10,000 x 1,000 within 5x of the raw read.
2. Requests/s under 32 concurrent clients on one daphne process (`bench.rest_baseline`):
   the baseline `GET /auth/me`, then `GET /risk/limits` and `POST /risk/evaluate` for
   the 100x50 user, with their ratio to the baseline.

Runs on the configured stack: the embedded SQLite + Redis by default, PostgreSQL and
Redis with DATABASE_URL / REDIS_URL. It creates `bench-eval-<P>x<L>` users (rebuilt on
every run) and, for the run, raises `max_price_age_seconds` to an hour so that marks
written at set-up do not go stale midway (restored afterwards).
"""

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.environment import BenchError, bench_token, django_setup, redis_running  # noqa: E402
from bench.rest_baseline import BASELINE_PATH  # noqa: E402
from bench.server import running_server  # noqa: E402
from bench.wrk import format_table, measure  # noqa: E402

SIZES = [(100, 50), (1_000, 100), (10_000, 1_000)]
EXCHANGES = ["paper", "binanceusdm", "bybit", "okx", "hyperliquid"]
PORTFOLIO_LIMITS = [
    ("total_exposure", Decimal("1e12")),
    ("daily_loss", Decimal("1e9")),
    ("margin_ratio", Decimal("1")),
    ("leverage", Decimal("1000")),
    ("drawdown", Decimal("100")),
]
TARGET_MS = 200
TARGET_RATIO = 5  # evaluation of 10,000 x 1,000 within 5x of the raw read (SPEC §11)


def username_for(positions: int, limits: int) -> str:
    return f"bench-eval-{positions}x{limits}"


def book_build(*, positions: int, limits: int):
    """(Re)create the bench user of this size with its accounts, balances, positions and
    limits, in bulk. Returns the user."""
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import AccountDay, Balance, ExchangeAccount, Position
    from risk.models import RiskLimit

    User = get_user_model()
    name = username_for(positions, limits)
    with transaction.atomic():
        User.objects.filter(username=name).delete()
        user = User.objects.create(username=name)
        user.set_unusable_password()
        user.save()
        now = timezone.now()
        accounts = ExchangeAccount.objects.bulk_create(
            [ExchangeAccount(user=user, exchange=exchange, last_synced_at=now) for exchange in EXCHANGES]
        )
        Balance.objects.bulk_create(
            [
                Balance(
                    account=account,
                    balance=Decimal(1_000_000),
                    equity=Decimal(1_000_000),
                    available=Decimal(900_000),
                    maintenance_margin=Decimal(5_000),
                    peak_equity=Decimal(1_000_000),
                    updated_at=now,
                )
                for account in accounts
            ]
        )
        AccountDay.objects.bulk_create(
            [
                AccountDay(
                    account=account,
                    date=datetime.now(UTC).date(),
                    start_balance=Decimal(1_000_000),
                    last_balance=Decimal(1_000_000),
                    updated_at=now,
                )
                for account in accounts
            ]
        )
        symbols = max(1, positions // (2 * len(EXCHANGES)))
        rows = []
        for index in range(positions):
            account = accounts[index % len(EXCHANGES)]
            symbol_index = (index // len(EXCHANGES)) % symbols
            side = "long" if (index // (len(EXCHANGES) * symbols)) % 2 == 0 else "short"
            price = Decimal(100 + symbol_index % 50)
            size = Decimal("0.5")
            rows.append(
                Position(
                    account=account,
                    symbol=f"B{symbol_index:04d}USDT",
                    side=side,
                    hedged=True,
                    size=size,
                    entry_price=price,
                    mark_price=price,
                    mark_updated_at=now,
                    notional=size * price,
                    leverage=Decimal(5),
                    best_price=price,
                    opened_at=now,
                )
            )
        Position.objects.bulk_create(rows, batch_size=2000)
        limit_rows = [
            RiskLimit(user=user, limit_type=kind, threshold_value=threshold, set_by=user)
            for kind, threshold in PORTFOLIO_LIMITS
        ]
        for index in range(max(0, limits - len(PORTFOLIO_LIMITS))):
            limit_rows.append(
                RiskLimit(
                    user=user,
                    limit_type="position_size",
                    symbol=f"B{index:04d}USDT" if index < symbols else f"L{index:04d}USDT",
                    threshold_value=Decimal("1e9"),
                    warning_value=Decimal("8e8"),
                    set_by=user,
                )
            )
        RiskLimit.objects.bulk_create(limit_rows, batch_size=2000)
    return user


def evaluation_timings(user, *, repeats: int) -> dict:
    """The first run, `repeats` runs on unchanged rows (what the last parsed is reused:
    risk.services.request_memo), and `repeats` runs each after one position's mark moved
    (written before the timer starts, as a tick would: that book is parsed again)."""
    from django.db import reset_queries
    from django.utils import timezone

    from accounts.models import Position
    from risk.services.evaluation import evaluation_run

    started = time.perf_counter()
    first = evaluation_run(user_id=user.pk)
    first_ms = (time.perf_counter() - started) * 1000
    runs, moved = [], []
    for _ in range(repeats):
        reset_queries()
        started = time.perf_counter()
        result = evaluation_run(user_id=user.pk)
        runs.append((time.perf_counter() - started) * 1000)
    ticked = Position.objects.filter(account__user=user, closed_at__isnull=True).order_by("-id")[:1]
    for _ in range(repeats):
        Position.objects.filter(pk__in=ticked).update(mark_updated_at=timezone.now())
        reset_queries()
        started = time.perf_counter()
        evaluation_run(user_id=user.pk)
        moved.append((time.perf_counter() - started) * 1000)
    return {
        "first_ms": first_ms,
        "median_ms": statistics.median(runs),
        "best_ms": min(runs),
        "moved_median_ms": statistics.median(moved),
        "risk_level": result.risk_level,
        "statuses": len(result.statuses),
        "first_alerts": len(first.alerts_raised),
        "steady_alerts": len(result.alerts_raised) + len(result.alerts_resolved),
    }


# The baseline's three SELECTs: the rows evaluation reads for one user (`book_load`,
# `limits_load`), with the columns it reads, straight from the tables.
RAW_READ_QUERIES = [
    "SELECT p.id, p.account_id, p.symbol, p.side, p.hedged, p.size, p.entry_price, p.mark_price, p.notional,"
    " p.unrealized_pnl, p.realized_pnl, p.leverage, p.peak_pnl, p.best_price, p.mark_updated_at, p.opened_at"
    " FROM accounts_position p JOIN accounts_exchangeaccount a ON a.id = p.account_id"
    " WHERE a.user_id = %s AND p.closed_at IS NULL",
    "SELECT id, user_id, symbol, limit_type, threshold_value, warning_value, equity_peaks"
    " FROM risk_risklimit WHERE user_id = %s AND enabled",
    "SELECT a.id, a.user_id, a.exchange, a.last_sync_failed, b.id, b.balance, b.unrealized_pnl,"
    " b.maintenance_margin, b.peak_equity"
    " FROM accounts_exchangeaccount a LEFT JOIN accounts_balance b ON b.account_id = a.id WHERE a.user_id = %s",
]


def raw_read_timings(user, *, repeats: int) -> dict:
    """The baseline: the same book's positions, limits and balances through a raw
    DB-API cursor, fetched (median and best of `repeats`, after one warm-up read)."""
    from django.db import connection

    user_id = type(user)._meta.pk.get_db_prep_value(user.pk, connection)  # a UUID as the backend stores it

    def read() -> int:
        rows = 0
        with connection.cursor() as cursor:
            for sql in RAW_READ_QUERIES:
                cursor.execute(sql, [user_id])
                rows += len(cursor.fetchall())
        return rows

    read()
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        rows = read()
        runs.append((time.perf_counter() - started) * 1000)
    return {"raw_median_ms": statistics.median(runs), "raw_best_ms": min(runs), "raw_rows": rows}


def baseline_table(results: list[dict]) -> str:
    header = (
        "| positions x limits | evaluation median ms | best ms | raw read median ms | best ms | rows | ratio |"
        " one mark moved: median ms | ratio |"
    )
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in results:
        lines.append(
            f"| {row['positions']:,} x {row['limits']:,} | {row['median_ms']:.1f} | {row['best_ms']:.1f} | "
            f"{row['raw_median_ms']:.1f} | {row['raw_best_ms']:.1f} | {row['raw_rows']:,} | "
            f"{row['median_ms'] / row['raw_median_ms']:.1f}x | {row['moved_median_ms']:.1f} | "
            f"{row['moved_median_ms'] / row['raw_median_ms']:.1f}x |"
        )
    return "\n".join(lines)


def _config_for_run(max_price_age: int | None = None) -> int:
    """Set the global max_price_age_seconds; returns the previous value."""
    from risk.services.config import global_config_get, global_config_update

    previous = global_config_get().max_price_age_seconds
    if max_price_age is not None:
        global_config_update(actor=None, max_price_age_seconds=max_price_age)
    return previous


def growth_table(results: list[dict]) -> str:
    header = "| positions x limits | first run ms | median ms | best ms | x per 10x step | statuses |"
    lines = [header, "|---|---:|---:|---:|---:|---:|"]
    previous = None
    for row in results:
        growth = f"{row['median_ms'] / previous:.1f}" if previous else "-"
        lines.append(
            f"| {row['positions']:,} x {row['limits']:,} | {row['first_ms']:.1f} | {row['median_ms']:.1f} | "
            f"{row['best_ms']:.1f} | {growth} | {row['statuses']:,} |"
        )
        previous = row["median_ms"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="measured evaluations per size (default 5)")
    parser.add_argument("--duration", type=int, default=10, help="seconds of each REST measurement (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of REST warm-up, not counted (default 2)")
    parser.add_argument("--no-rest", action="store_true", help="only the in-process evaluation timings")
    parser.add_argument("--no-pin", action="store_true", help="let daphne and wrk share the cores")
    args = parser.parse_args(argv)

    django_setup()
    with redis_running() as redis_note:
        print(f"redis: {redis_note}")
        return _run(args)


def _run(args) -> int:
    bench_token(migrate=True)  # migrates the configured database
    from django.db import connection

    from risk.bootstrap import default_breakers_ensure

    default_breakers_ensure()
    previous_age = _config_for_run(max_price_age=3600)
    try:
        print(f"database: {connection.vendor}; {len(os.sched_getaffinity(0))} CPUs")
        results = []
        for positions, limits in SIZES:
            user = book_build(positions=positions, limits=limits)
            timing = evaluation_timings(user, repeats=args.repeats)
            raw = raw_read_timings(user, repeats=args.repeats)
            results.append({"positions": positions, "limits": limits, **timing, **raw})
            print(
                f"  {positions:>6,} x {limits:>5,}: median {timing['median_ms']:.1f} ms, "
                f"best {timing['best_ms']:.1f} ms, first run {timing['first_ms']:.1f} ms "
                f"({timing['first_alerts']} alerts raised), "
                f"steady-state writes {timing['steady_alerts']}; "
                f"raw read median {raw['raw_median_ms']:.1f} ms ({raw['raw_rows']:,} rows)"
            )
        print()
        print("Evaluation time of one user's book (in process, default breakers, dry run)")
        print(growth_table(results))
        print()
        print("Against the baseline in the same run: a raw cursor read of the same book's rows")
        print(baseline_table(results))
        largest = results[-1]
        ratio = largest["median_ms"] / largest["raw_median_ms"]
        verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
        print(
            f"\n10,000 x 1,000: {largest['median_ms']:.1f} ms, {ratio:.1f}x the raw read of "
            f"{largest['raw_median_ms']:.1f} ms ({verdict} the within {TARGET_RATIO}x target; "
            f"{'under' if largest['median_ms'] < TARGET_MS else 'over'} {TARGET_MS} ms); "
            f"{largest['moved_median_ms'] / largest['raw_median_ms']:.1f}x after one mark moved"
        )

        if args.no_rest:
            return 0
        token = bench_token(username=username_for(*SIZES[0]), migrate=False)
        with running_server(pin=not args.no_pin) as server:
            print(f"\nserver: {server.describe()}")
            common = {"server": server, "token": token, "duration": args.duration, "warmup": args.warmup}
            baseline = measure(BASELINE_PATH, **common)
            limits = measure("/api/v1/risk/limits", **common)
            evaluate = measure("/api/v1/risk/evaluate", method="POST", body={}, **common)
        print(f"REST, 32 concurrent clients, one daphne process, the {SIZES[0][0]} x {SIZES[0][1]} user (same run)")
        print(format_table([baseline, limits, evaluate]))
        for result in (limits, evaluate):
            share = result["rps"] / baseline["rps"]
            verdict = "meets" if share >= 0.5 else "MISSES"
            print(f"{result['method']} {result['path']}: {share:.0%} of the baseline ({verdict} the >= 50% target)")
        return 0
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        _config_for_run(max_price_age=previous_age)


if __name__ == "__main__":
    sys.exit(main())
