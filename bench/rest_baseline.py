"""REST baseline (SPEC §11, third row): requests/s and latency of a trivial authenticated
DRF view, `GET /api/v1/auth/me`, on one daphne process under 32 concurrent clients.

    .venv/bin/python bench/rest_baseline.py [--duration 10]
    .venv/bin/python -m bench.rest_baseline [--duration 10]

It runs on whatever the environment configures (the embedded SQLite + Redis by default,
PostgreSQL / Redis with DATABASE_URL / REDIS_URL): migrates that database, makes a
`bench` user and an access token for it, starts daphne, and drives it with `wrk`
(Debian: `apt-get install wrk`). Rate limits are lifted for the daphne it starts.

Other benchmarks reuse the pieces and measure against this baseline in the same run:

    from bench.environment import bench_token
    from bench.server import running_server
    from bench.wrk import measure

    token = bench_token()
    with running_server() as server:
        baseline = measure("/api/v1/auth/me", server=server, token=token, duration=10)
        evaluate = measure("/api/v1/risk/evaluate", server=server, method="POST", body={...},
                           token=token, duration=10)
"""

import argparse
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: bench/ is sys.path[0], the project is not
    sys.path.insert(0, str(ROOT))

BASELINE_PATH = "/api/v1/auth/me"

from bench.environment import BenchError, bench_token, load_average  # noqa: E402
from bench.server import running_server  # noqa: E402
from bench.wrk import CONNECTIONS, WRK_THREADS, format_table, measure  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="whole seconds measured (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="whole seconds run first, not counted (default 2)")
    parser.add_argument("--connections", type=int, default=CONNECTIONS, help="concurrent clients (default 32)")
    parser.add_argument("--no-pin", action="store_true", help="let daphne and wrk share the cores (no taskset)")
    parser.add_argument(
        "--production",
        action="store_true",
        help="also /risk/limits and /risk/evaluate (100 x 50), on daphne and through nginx + gunicorn (SPEC §2)",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="gunicorn workers (default: WEB_CONCURRENCY or cores)"
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="with --production: rounds of the three endpoints per server (default 1)"
    )
    args = parser.parse_args(argv)
    if args.production:
        from bench.production import production_main

        return production_main(args)

    if shutil.which("wrk") is None:
        print("wrk is not installed. Install it with:  apt-get install wrk", file=sys.stderr)
        return 2
    token = bench_token()
    try:
        with running_server(pin=not args.no_pin) as server:
            print(f"server: {server.describe()}")
            print(f"host:   {len(os.sched_getaffinity(0))} CPUs, load average {load_average()} before the run")
            print(
                f"load:   wrk {WRK_THREADS} threads, {args.connections} connections, "
                f"{args.warmup:g} s warm-up + {args.duration:g} s measured"
            )
            result = measure(
                BASELINE_PATH,
                server=server,
                token=token,
                duration=args.duration,
                warmup=args.warmup,
                connections=args.connections,
            )
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    print()
    print("REST baseline: a trivial authenticated DRF view (SPEC §11)")
    print(format_table([result]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
