"""REST baseline (SPEC §11, third row): requests/s and latency of a trivial authenticated
DRF view, `GET /api/v1/auth/me`, on one daphne process under 32 concurrent clients.

    .venv/bin/python bench/rest_baseline.py [--duration 10]
    .venv/bin/python -m bench.rest_baseline [--duration 10]

It runs on whatever the environment configures (the embedded SQLite + Redis by default,
PostgreSQL / Redis with DATABASE_URL / REDIS_URL): migrates that database, makes a
`bench` user and an access token for it, starts daphne, and drives it with `wrk`
(Debian: `apt-get install wrk`). Rate limits are lifted for the daphne it starts.

Other benchmarks reuse the pieces and measure against this baseline in the same run:

    from bench.rest_baseline import bench_token, measure, running_server

    token = bench_token()
    with running_server() as server:
        baseline = measure("/api/v1/auth/me", server=server, token=token, duration=10)
        evaluate = measure("/api/v1/risk/evaluate", server=server, method="POST", body={...},
                           token=token, duration=10)
"""

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: bench/ is sys.path[0], the project is not
    sys.path.insert(0, str(ROOT))

BASELINE_PATH = "/api/v1/auth/me"
BENCH_USERNAME = "bench"
CONNECTIONS = 32
WRK_THREADS = 2
# Far above anything one process can serve: the benchmark measures the view, not the 429s.
UNLIMITED_RATE = "100000000/min"
RATE_LIMIT_VARIABLES = (
    "RATE_LIMIT_RISK",
    "RATE_LIMIT_CONFIG",
    "RATE_LIMIT_CACHE",
    "RATE_LIMIT_JOBS",
    "RATE_LIMIT_CHECK_ORDER",
    "RATE_LIMIT_DEFAULT",
    "RATE_LIMIT_LOGIN",
)


class BenchError(RuntimeError):
    """The benchmark cannot run or its measurement is not valid (errors, wrong status)."""


class WrkMissing(BenchError):
    pass


# --- Django, database, user, token ------------------------------------------------------
def django_setup() -> None:
    """Django with the settings the environment configures (once per process)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "etrms.settings")
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()


def bench_token(*, username: str = BENCH_USERNAME, migrate: bool = True, lifetime_minutes: int = 120) -> str:
    """An access JWT for the (created once, reused) bench user of the configured database.

    The token outlives JWT_ACCESS_MINUTES so a long run does not turn into 401s halfway.
    """
    django_setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from etrms.api.auth import TokenObtainSerializer

    if migrate:
        call_command("migrate", interactive=False, verbosity=0)
    user, created = get_user_model().objects.get_or_create(username=username)
    if created:
        user.set_unusable_password()  # only ever authenticated by the token minted here
        user.save(update_fields=["password"])
    access = TokenObtainSerializer.get_token(user).access_token
    access.set_exp(lifetime=timedelta(minutes=lifetime_minutes))
    return str(access)


# --- The server -------------------------------------------------------------------------
@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log_path: Path
    daphne_cpus: list[int] = field(default_factory=list)
    wrk_cpus: list[int] = field(default_factory=list)
    database: str = ""
    redis: str = ""
    processes: list = field(default_factory=list)  # whose CPU counts (with their children); default: `process`
    shape: str = "daphne (1 process)"
    backend_url: str = ""  # the WSGI workers behind the proxy, when there is one

    def describe(self) -> str:
        pinning = (
            f"server pinned to CPU {_cpu_list(self.daphne_cpus)}, wrk to CPU {_cpu_list(self.wrk_cpus)} (taskset)"
            if self.daphne_cpus
            else "no CPU pinning: the server and wrk share the cores"
        )
        return f"{self.shape} at {self.url}; {pinning}; database {self.database}; redis {self.redis}"

    def cpu_seconds(self) -> float | None:
        """CPU seconds used so far by the server's processes and their children."""
        total = 0.0
        for process in self.processes or [self.process]:
            for pid in _tree(process.pid):
                seconds = _cpu_seconds(pid)
                if seconds is None:
                    return None
                total += seconds
        return total


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (Linux /proc; just `pid` elsewhere)."""
    pids, index = [pid], 0
    while index < len(pids):
        try:
            tasks = Path(f"/proc/{pids[index]}/task").iterdir()
            for task in tasks:
                children = (task / "children").read_text().split()
                pids.extend(int(child) for child in children if int(child) not in pids)
        except OSError:
            pass
        index += 1
    return pids


def _cpu_list(cpus: list[int]) -> str:
    return ",".join(str(cpu) for cpu in cpus)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cpu_split() -> tuple[list[int], list[int]]:
    """(daphne's CPUs, wrk's CPUs): one core each on a 2-core machine; none without taskset."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or shutil.which("taskset") is None:
        return [], []
    half = len(cpus) // 2
    return cpus[:half], cpus[half:]


def _taskset(cpus: list[int], argv: list[str]) -> list[str]:
    return ["taskset", "-c", _cpu_list(cpus), *argv] if cpus else argv


def _server_env() -> dict[str, str]:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="etrms.settings", PYTHONUNBUFFERED="1")
    env.update(dict.fromkeys(RATE_LIMIT_VARIABLES, UNLIMITED_RATE))
    if "ALLOWED_HOSTS" in env:  # keep production mode, and accept the loopback Host header
        env["ALLOWED_HOSTS"] = f"{env['ALLOWED_HOSTS']},127.0.0.1"
    return env


@contextlib.contextmanager
def _redis_running() -> Iterator[str]:
    """The embedded redis-server when no REDIS_URL is set (started unless one answers)."""
    django_setup()
    from django.conf import settings

    from etrms import embedded_redis

    if not settings.EMBEDDED_REDIS:
        yield "REDIS_URL"
        return
    socket_path = settings.EMBEDDED_REDIS_SOCKET
    if embedded_redis.answers(socket_path):
        yield f"embedded, already running on {socket_path}"
        return
    if socket_path.exists():
        socket_path.unlink()  # left behind by a server that was killed
    process = embedded_redis.start(socket_path)
    try:
        yield f"embedded, started on {socket_path}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_ready(url: str, process: subprocess.Popen, log_path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"daphne exited with {process.returncode}:\n{_tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:  # noqa: S310 (our own http://127.0.0.1)
                if response.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}: {exc.read()[:300]!r}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise BenchError(f"daphne did not answer /readyz within {timeout:.0f}s ({last}):\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextlib.contextmanager
def running_server(*, pin: bool = True) -> Iterator[Server]:
    """A daphne process (and the embedded Redis, when that is the configured one) on a
    free loopback port, ready (/readyz 200), with rate limits lifted; stopped on exit.
    Its log goes to a temporary file, printed if it fails to start. With `pin`, daphne
    and wrk get separate cores (taskset), so the load generator does not steal the
    server's CPU; Redis (and PostgreSQL) are left to the scheduler."""
    django_setup()
    from django.db import connection

    daphne_cpus, wrk_cpus = _cpu_split() if pin else ([], [])
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    daphne = str(Path(sys.executable).parent / "daphne")
    argv = _taskset(daphne_cpus, [daphne, "-b", "127.0.0.1", "-p", str(port), "etrms.asgi:application"])
    with _redis_running() as redis_note, tempfile.TemporaryDirectory(prefix="etrms-bench-") as tmp:
        log_path = Path(tmp) / "daphne.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(argv, cwd=ROOT, env=_server_env(), stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_ready(url, process, log_path)
            yield Server(
                url=url,
                process=process,
                log_path=log_path,
                daphne_cpus=daphne_cpus,
                wrk_cpus=wrk_cpus,
                database=connection.vendor,
                redis=redis_note,
            )
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --- wrk ----------------------------------------------------------------------------------
_RESULT_LINE = re.compile(r"^ETRMS_BENCH (\{.*\})$", re.MULTILINE)


def _lua_long_string(text: str) -> str:
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[{text}]{'=' * level}]"


def _wrk_script(*, method: str, body: str | None, token: str) -> str:
    """Sets the request; `done` prints exact figures (microseconds) as one JSON line."""
    lines = [
        f'wrk.method = "{method}"',
        f'wrk.headers["Authorization"] = "Bearer {token}"',
        'wrk.headers["Accept"] = "application/json"',
    ]
    if body is not None:
        lines += ['wrk.headers["Content-Type"] = "application/json"', f"wrk.body = {_lua_long_string(body)}"]
    lines.append(
        """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'ETRMS_BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, '
    .. '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""
    )
    return "\n".join(lines)


def _probe(url: str, *, method: str, body: str | None, token: str) -> None:
    """One request before the run: a 4xx/5xx or a redirect would make wrk's figures meaningless."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    data = body.encode() if body is not None else None
    request = urllib.request.Request(url, method=method, headers=headers, data=data)  # noqa: S310 (http://127.0.0.1)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (our own http://127.0.0.1)
            if response.geturl() != url or not 200 <= response.status < 300:
                raise BenchError(f"{method} {url} answered {response.status} at {response.geturl()}")
    except urllib.error.HTTPError as exc:
        raise BenchError(f"{method} {url} answered {exc.code}: {exc.read()[:500]!r}") from exc


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process and its threads (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def _run_wrk(argv: list[str], timeout: float) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise BenchError(f"wrk failed ({result.returncode}): {result.stderr or result.stdout}")
    return result.stdout


def measure(
    path: str,
    *,
    server: Server,
    token: str,
    duration: float,
    method: str = "GET",
    body: dict | list | str | None = None,
    connections: int = CONNECTIONS,
    threads: int = WRK_THREADS,
    warmup: float = 2,
) -> dict:
    """Drive `method path` on `server` with wrk for `duration` seconds (after `warmup`
    seconds that are not counted; wrk rounds both to whole seconds) and return requests/s and latencies in milliseconds:
    `{"rps", "p50_ms", "p99_ms", "max_ms", "requests", "duration_s", "server_cpu", "path",
    "method"}` (`server_cpu`: cores daphne used during the run, None off Linux).

    `body` (a dict/list is sent as JSON) is sent with every request. Raises BenchError if
    any response is not 2xx/3xx or a socket failed, and WrkMissing without wrk.
    """
    wrk = shutil.which("wrk")
    if wrk is None:
        raise WrkMissing("wrk is not installed: apt-get install wrk")
    if body is not None and not isinstance(body, str):
        body = json.dumps(body)
    url = f"{server.url}{path}"
    _probe(url, method=method, body=body, token=token)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="etrms-wrk-") as script:
        script.write(_wrk_script(method=method, body=body, token=token))
        script.flush()

        def run(seconds: float) -> str:
            whole = max(1, round(seconds))  # wrk takes whole seconds
            argv = [wrk, "-t", str(min(threads, connections)), "-c", str(connections), "-d", f"{whole}s"]
            argv += ["--timeout", "10s", "--latency", "-s", script.name, url]
            return _run_wrk(_taskset(server.wrk_cpus, argv), timeout=whole + 60)

        if warmup > 0:
            run(warmup)
        cpu_before = server.cpu_seconds()
        output = run(duration)
        cpu_after = server.cpu_seconds()
    match = _RESULT_LINE.search(output)
    if match is None:
        raise BenchError(f"no result line in wrk's output:\n{output}")
    raw = json.loads(match.group(1))
    errors = {name: raw[name] for name in ("connect", "read", "write", "status", "timeout") if raw[name]}
    if errors:
        raise BenchError(f"{method} {path}: errors during the run {errors} (status = non-2xx/3xx responses)")
    duration_s = raw["duration_us"] / 1e6
    return {
        "method": method,
        "path": path,
        "rps": raw["requests"] / duration_s,
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "requests": raw["requests"],
        "duration_s": duration_s,
        # Cores the server used (1.0 = one core): near its core count means the server was the bottleneck.
        "server_cpu": (cpu_after - cpu_before) / duration_s if cpu_before is not None and cpu_after else None,
    }


def format_table(results: list[dict]) -> str:
    """A Markdown table, one row per `measure()` result."""
    header = ("endpoint", "requests/s", "p50 ms", "p99 ms", "requests", "server CPU")
    rows = [
        (
            f"{r['method']} {r['path']}",
            f"{r['rps']:,.0f}",
            f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            f"{r['requests']:,}",
            "n/a" if r["server_cpu"] is None else f"{r['server_cpu']:.0%}",
        )
        for r in results
    ]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: tuple[str, ...]) -> str:
        numbers = [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
        padded = [cells[0].ljust(widths[0]), *numbers]
        return "| " + " | ".join(padded) + " |"

    separator = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(header), separator, *(line(row) for row in rows)])


def _load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


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
            print(f"host:   {len(os.sched_getaffinity(0))} CPUs, load average {_load_average()} before the run")
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
