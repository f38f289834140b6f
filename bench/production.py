"""The production shape of SPEC §2 on this machine, without a container engine: nginx
(Debian's package) in front of gunicorn's WSGI workers and one daphne process, started
straight from the files docker-compose.yml uses (deploy/nginx/etrms.conf.template,
deploy/gunicorn.conf.py).

    from bench.production import running_production

    with running_production(workers=2) as server:   # a bench.server.Server
        measure("/api/v1/auth/me", server=server, token=token, duration=10)

nginx runs as the current user from a private prefix (its pid, logs and temp files in a
temporary directory); the template is rendered the way the nginx image's envsubst does
(only the ETRMS_* variables are replaced). Rate limits are lifted, as for daphne.
"""

import contextlib
import os
import shutil
import string
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bench.environment import ROOT, BenchError, django_setup, redis_running
from bench.server import Server, free_port, log_tail, process_stop, server_environment, wait_ready

TEMPLATE = ROOT / "deploy" / "nginx" / "etrms.conf.template"
GUNICORN_CONFIG = ROOT / "deploy" / "gunicorn.conf.py"

MAIN_CONF = """worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/etrms.conf;
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        raise BenchError("nginx is not installed: apt-get install nginx")
    return found


def nginx_config_render(directory: Path, *, listen: str, web: str, ws: str) -> Path:
    """The compose template with its ETRMS_* variables set, wrapped in a main config
    that keeps every file under `directory`. Returns the main config's path."""
    rendered = string.Template(TEMPLATE.read_text()).safe_substitute(
        ETRMS_LISTEN=listen, ETRMS_WEB_UPSTREAM=web, ETRMS_WS_UPSTREAM=ws
    )
    (directory / "etrms.conf").write_text(rendered)
    main = directory / "nginx.conf"
    main.write_text(MAIN_CONF.format(tmp=directory))
    return main


@contextlib.contextmanager
def running_production(*, workers: int | None = None, env: dict | None = None) -> Iterator[Server]:
    """nginx on a free loopback port in front of gunicorn (`workers` sync workers,
    default `WEB_CONCURRENCY` or the core count) and one daphne for /api/v1/ws*, ready
    (/readyz 200 through nginx); all stopped on exit. `server.processes` lists the three
    for CPU accounting (their children included)."""
    django_setup()
    from django.db import connection

    nginx = nginx_binary()
    public, web, ws = free_port(), free_port(), free_port()
    server_env = server_environment() | {"TRUSTED_PROXY_COUNT": "1"} | (env or {})
    if workers:
        server_env["WEB_CONCURRENCY"] = str(workers)
    bin_dir = Path(sys.executable).parent
    with redis_running() as redis_note, tempfile.TemporaryDirectory(prefix="etrms-prod-") as tmp:
        directory = Path(tmp)
        directory.chmod(0o755)  # nginx's workers (nobody, when started as root) keep their temp files here
        backend = f"127.0.0.1:{web}"
        main = nginx_config_render(directory, listen=f"127.0.0.1:{public}", web=backend, ws=f"127.0.0.1:{ws}")
        log_path = directory / "servers.log"
        commands = [
            [str(bin_dir / "gunicorn"), "-c", str(GUNICORN_CONFIG), "--bind", backend, "etrms.wsgi"],
            [str(bin_dir / "daphne"), "-b", "127.0.0.1", "-p", str(ws), "etrms.asgi:application"],
            [nginx, "-p", str(directory), "-c", str(main)],
        ]
        processes = []
        try:
            with log_path.open("wb") as log:
                for argv in commands:
                    processes.append(
                        subprocess.Popen(argv, cwd=ROOT, env=server_env, stdout=log, stderr=subprocess.STDOUT)
                    )
            url = f"http://127.0.0.1:{public}"
            wait_ready(url, processes[0], log_path)  # nginx and gunicorn
            wait_ready(f"http://127.0.0.1:{ws}", processes[1], log_path)  # daphne, for /api/v1/ws*
            yield Server(
                url=url,
                process=processes[0],
                log_path=log_path,
                database=connection.vendor,
                redis=redis_note,
                processes=processes,
                backend_url=f"http://{backend}",
                shape=f"nginx + gunicorn ({server_env.get('WEB_CONCURRENCY') or os.cpu_count()} sync workers)",
            )
        except BenchError as exc:
            raise BenchError(f"{exc}\n{log_tail(log_path)}") from exc
        finally:
            for process in reversed(processes):
                process_stop(process)


# --- the REST comparison of SPEC §11 (bench/rest_baseline.py --production) ----------------
def evaluate_fixture() -> tuple[str, dict]:
    """The 100 x 50 book of bench/evaluate.py (built again), its user's token, and the
    body of its `POST /risk/evaluate`. Marks stay fresh for the run (max_price_age 1 h)."""
    from bench.environment import bench_token
    from bench.evaluate import _config_for_run, book_build, username_for
    from risk.bootstrap import default_breakers_ensure

    default_breakers_ensure()
    _config_for_run(3600)
    book_build(positions=100, limits=50)
    return bench_token(username=username_for(100, 50), migrate=False), {}


def shapes_compare(
    *, token: str, duration: int, warmup: int, connections: int, workers: int | None, pin: bool, repeats: int = 1
):
    """`GET /auth/me` (the bench user), `GET /risk/limits` and `POST /risk/evaluate` (the
    100 x 50 user: its 50 limits, its book) on one daphne process, then through nginx +
    gunicorn; `repeats` rounds of the three on each server, one after the other, so each
    round's shares compare endpoints measured within seconds of each other (other load on
    the machine moves between rounds). Returns {shape: [[results of a round], ...]}."""
    from bench.server import running_server
    from bench.wrk import measure

    with redis_running():  # the fixture's configuration change is announced through Redis
        book_token, evaluate_body = evaluate_fixture()
    runs = {}

    def rounds(server) -> list[list[dict]]:
        common = {"server": server, "duration": duration, "warmup": warmup, "connections": connections}
        return [
            [
                measure("/api/v1/auth/me", token=token, **common),
                measure("/api/v1/risk/limits", token=book_token, **common),
                measure("/api/v1/risk/evaluate", method="POST", body=evaluate_body, token=book_token, **common),
            ]
            for _ in range(repeats)
        ]

    with running_server(pin=pin) as server:
        runs[server.describe()] = rounds(server)
    with running_production(workers=workers) as server:
        runs[server.describe()] = rounds(server)
    return runs


def _cpu_ms(result: dict) -> float | None:
    return None if result["server_cpu"] is None else result["server_cpu"] / result["rps"] * 1000


def production_main(args) -> int:
    """The three endpoints on both shapes, each with its ratios to `/auth/me` on the same
    server (per round, and their median over the rounds) and to one daphne process
    (bench.production)."""
    from statistics import median

    from bench.environment import bench_token, load_average
    from bench.wrk import format_table

    if shutil.which("wrk") is None:
        print("wrk is not installed. Install it with:  apt-get install wrk", file=sys.stderr)
        return 2
    token = bench_token()
    print(f"host: {len(os.sched_getaffinity(0))} CPUs, load average {load_average()} before the run")
    try:
        runs = shapes_compare(
            token=token,
            duration=args.duration,
            warmup=args.warmup,
            connections=args.connections,
            workers=args.workers,
            pin=not args.no_pin,
            repeats=args.repeats,
        )
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    print(f"load average {load_average()} after the run")
    medians = {}
    for name, rounds in runs.items():
        print(f"\n{name}")
        print(format_table([result for results in rounds for result in results]))
        shares = [[r["rps"] / results[0]["rps"] for r in results[1:]] for results in rounds]
        for index, round_shares in enumerate(shares, 1):
            endpoints = rounds[0][1:]
            listed = ", ".join(
                f"{r['method']} {r['path']} {s:.0%}" for r, s in zip(endpoints, round_shares, strict=True)
            )
            print(f"round {index}, share of /auth/me: {listed}")
        for index, results in enumerate(rounds, 1):
            # The servers' own CPU per request: what the rates say, without the load generator
            # and the machine's other work (Redis is not counted).
            costs = [_cpu_ms(r) for r in results]
            if None not in costs:
                listed = ", ".join(f"{r['path']} {cost:.2f}" for r, cost in zip(results, costs, strict=True))
                print(f"round {index}, server CPU ms a request: {listed}")
        if len(rounds) > 1:
            listed = ", ".join(
                f"{r['method']} {r['path']} {median(column):.0%}"
                for r, column in zip(rounds[0][1:], zip(*shares, strict=True), strict=True)
            )
            print(f"median share of /auth/me over {len(rounds)} rounds: {listed}")
        medians[name] = [median(r["rps"] for r in column) for column in zip(*rounds, strict=True)]
    print()
    daphne, production = medians.values()
    endpoints = next(iter(runs.values()))[0]
    for endpoint, before, after in zip(endpoints, daphne, production, strict=True):
        print(
            f"production / daphne, {endpoint['method']} {endpoint['path']}: {after / before:.2f}x (median requests/s)"
        )
    return 0
