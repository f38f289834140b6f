"""Jobs benchmark (SPEC §11, fourth row): no-op jobs through the API, enqueue to
`completed`, against bare Celery no-op tasks on the same broker, in the same run.

    .venv/bin/python -m bench.jobs [--jobs 2000] [--clients 4]

Both runs use the same worker: one `celery worker` on the four priority queues with
concurrency 2 (prefork), acks_late and prefetch 1, as `make run` starts it.

- baseline: `etrms.noop` published straight to the broker from this process (one
  producer connection), timed from the first publish until the broker holds neither a
  queued nor an unacked message;
- API: `POST /api/v1/jobs/enqueue {"name": "ping"}` from `--clients` concurrent HTTP
  clients, timed from the first request until the broker is drained as well (then every
  row must be `completed`); each request's latency gives the enqueue p50/p99;
- bulk: `{"jobs": [{"name": "ping"} x --per-request]}` the same way.

The API runs go through the production shape (bench/production.py: nginx + gunicorn,
`--workers`), or one daphne process with `--daphne`. Each run also reports the CPU the
worker (its main process and pool) used per job, and the web tier per request: on a
machine shared with other work they say where the time goes better than the rates do.
"""

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.environment import BenchError, bench_token, django_setup  # noqa: E402
from bench.server import running_server, tree_cpu_seconds  # noqa: E402

QUEUES = "critical,high,normal,low"


def start_worker() -> subprocess.Popen:
    name = f"bench-{uuid.uuid4().hex[:6]}@%h"
    argv = [sys.executable, "-m", "celery", "-A", "etrms", "worker", "-Q", QUEUES, "--concurrency", "2"]
    argv += ["--without-gossip", "--without-mingle", "--loglevel", "WARNING", "-n", name]
    return subprocess.Popen(argv, cwd=ROOT)


def wait_worker_ready(timeout: float = 60) -> None:
    from etrms.celery import noop

    noop.apply_async(args=["ready"], queue="critical").get(timeout=timeout)


def broker_load() -> tuple[int, int]:
    """(queued, unacked) messages in the broker."""
    from etrms.celery import PRIORITY_QUEUES
    from jobs.broker import broker_redis

    pipe = broker_redis().pipeline(transaction=False)
    for queue in PRIORITY_QUEUES:
        pipe.llen(queue)
    pipe.hlen("unacked")
    *queued, unacked = pipe.execute()
    return sum(queued), unacked


def bare_celery(n: int, worker_pid: int) -> dict:
    """Publish n no-op tasks, wait until the broker is drained."""
    from etrms.celery import app, noop

    # Unacked messages of workers that died earlier stay until the visibility timeout.
    _, leftover = broker_load()
    worker_cpu = tree_cpu_seconds(worker_pid)
    started = time.perf_counter()
    with app.producer_or_acquire() as producer:
        for _ in range(n):
            noop.apply_async(queue="normal", ignore_result=True, producer=producer)
    published = time.perf_counter()
    while broker_load() > (0, leftover):
        time.sleep(0.005)
    done = time.perf_counter()
    return {
        "tasks_per_s": n / (done - started),
        "publish_per_s": n / (published - started),
        "worker_cpu_ms": _per_job_ms(tree_cpu_seconds(worker_pid), worker_cpu, n),
    }


def _per_job_ms(after: float | None, before: float | None, n: int) -> float | None:
    """CPU (of a process tree, all cores) per job or request, in ms."""
    return None if after is None or before is None else (after - before) / n * 1000


def _chunks(items: list, size: int):
    return (items[index : index + size] for index in range(0, len(items), size))


async def _enqueue_all(url: str, token: str, n: int, clients: int, per_request: int = 1) -> list[tuple[str, float]]:
    """(job id, seconds of the request that enqueued it); `per_request` > 1: bulk enqueue."""
    import aiohttp

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    results: list[tuple[str, float]] = []
    remaining = iter(range(0, n, per_request))
    body_one = '{"name": "ping"}'
    body_bulk = json.dumps({"jobs": [{"name": "ping"}] * per_request})

    async def client(session):
        for _ in remaining:
            began = time.perf_counter()
            data = body_one if per_request == 1 else body_bulk
            async with session.post(f"{url}/api/v1/jobs/enqueue", data=data, headers=headers) as response:
                body = await response.json()
                if response.status != 200:
                    raise BenchError(f"enqueue answered {response.status}: {body}")
            seconds = time.perf_counter() - began
            ids = [body["job_id"]] if per_request == 1 else [item["job_id"] for item in body["jobs"]]
            results.extend((job_id, seconds) for job_id in ids)

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))
    return results


def api_jobs(server, token: str, n: int, clients: int, worker_pid: int, per_request: int = 1) -> dict:
    """Timed until the broker is drained, as the baseline is (a job's row is completed
    before its message is acknowledged: acks_late), then every row is checked once."""
    from jobs.models import Job

    _, leftover = broker_load()
    worker_cpu, server_cpu = tree_cpu_seconds(worker_pid), server.cpu_seconds()
    started = time.perf_counter()
    results = asyncio.run(_enqueue_all(server.url, token, n, clients, per_request))
    enqueued = time.perf_counter()  # every job was published before its request answered
    server_cpu_ms = _per_job_ms(server.cpu_seconds(), server_cpu, n // per_request)
    while broker_load() > (0, leftover):
        time.sleep(0.005)
    done = time.perf_counter()
    ids = [job_id for job_id, _ in results]
    completed = sum(Job.objects.filter(pk__in=chunk, status="completed").count() for chunk in _chunks(ids, 500))
    if completed != n:
        raise BenchError(f"{n - completed} of {n} jobs are not completed once the broker is drained")
    latencies = sorted(seconds * 1000 for _, seconds in results)
    return {
        "jobs_per_s": n / (done - started),
        "enqueue_per_s": n / (enqueued - started),
        "enqueue_p50_ms": statistics.median(latencies),
        "enqueue_p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "worker_cpu_ms": _per_job_ms(tree_cpu_seconds(worker_pid), worker_cpu, n),
        "server_cpu_ms": server_cpu_ms,
    }


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000, help="jobs (and bare tasks) per run (default 2000)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients enqueueing (default 4)")
    parser.add_argument("--per-request", type=int, default=100, help="jobs per bulk request (default 100)")
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (default: the core count)")
    parser.add_argument("--daphne", action="store_true", help="one daphne process instead of nginx + gunicorn")
    args = parser.parse_args(argv)

    token = bench_token()
    django_setup()
    from bench.environment import load_average
    from bench.production import running_production
    from etrms.celery import app

    print(f"load average {load_average()} before the run")
    shape = running_server(pin=False) if args.daphne else running_production(workers=args.workers)
    with shape as server:
        app.control.purge()
        worker = start_worker()
        try:
            wait_worker_ready()
            print(f"server: {server.describe()}; worker: 1 process, concurrency 2, prefetch 1, acks_late")
            bare_celery(min(200, args.jobs), worker.pid)  # warm-up
            baseline = bare_celery(args.jobs, worker.pid)
            api_jobs(server, token, min(200, args.jobs), args.clients, worker.pid)  # warm-up
            api = api_jobs(server, token, args.jobs, args.clients, worker.pid)
            bulk = api_jobs(server, token, args.jobs, args.clients, worker.pid, args.per_request)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    print(f"load average {load_average()} after the run")

    print()
    print(f"Jobs: {args.jobs} no-op jobs through the API vs bare Celery no-op tasks (SPEC §11)")
    print(
        "| run | per second | enqueue/publish per second | enqueue p50 ms | enqueue p99 ms "
        "| worker CPU ms a job | web tier CPU ms a request | ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| bare Celery `etrms.noop` | {baseline['tasks_per_s']:,.0f} | {baseline['publish_per_s']:,.0f} | | "
        f"| {_ms(baseline['worker_cpu_ms'])} | | |"
    )
    for label, run in (
        (f"API `ping`, one a request ({args.clients} clients)", api),
        (f"API bulk, {args.per_request} a request ({args.clients} clients)", bulk),
    ):
        ratio = run["jobs_per_s"] / baseline["tasks_per_s"]
        print(
            f"| {label} | {run['jobs_per_s']:,.0f} | {run['enqueue_per_s']:,.0f} "
            f"| {run['enqueue_p50_ms']:.2f} | {run['enqueue_p99_ms']:.2f} | {_ms(run['worker_cpu_ms'])} "
            f"| {_ms(run['server_cpu_ms'])} | {ratio:.0%} |"
        )
    print()
    print("targets: one a request >= 30% with enqueue p99 <= 10 ms; bulk >= 70% (request p99 for bulk)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
