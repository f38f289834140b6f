"""The load generator: `measure()` drives one endpoint of a running server with wrk and
returns requests/s, latencies and the server's CPU; `format_table()` prints the results."""

import json
import re
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request

from bench.environment import BenchError
from bench.server import Server, taskset

CONNECTIONS = 32
WRK_THREADS = 2


class WrkMissing(BenchError):
    pass


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
            return _run_wrk(taskset(server.wrk_cpus, argv), timeout=whole + 60)

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
