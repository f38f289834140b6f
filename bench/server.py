"""The server a benchmark drives: one daphne process on a free loopback port, rate limits
lifted, pinned to its own cores (taskset) so the load generator does not steal its CPU,
and the CPU seconds it uses."""

import contextlib
import os
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
from pathlib import Path

from bench.environment import ROOT, BenchError, django_setup, redis_running

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
        seconds = [tree_cpu_seconds(process.pid) for process in self.processes or [self.process]]
        return None if None in seconds else sum(seconds)


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU seconds used so far by process `pid` and its descendants (None off Linux)."""
    total = 0.0
    for member in _tree(pid):
        seconds = _cpu_seconds(member)
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


def free_port() -> int:
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


def taskset(cpus: list[int], argv: list[str]) -> list[str]:
    return ["taskset", "-c", _cpu_list(cpus), *argv] if cpus else argv


def server_environment() -> dict[str, str]:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="etrms.settings", PYTHONUNBUFFERED="1")
    env.update(dict.fromkeys(RATE_LIMIT_VARIABLES, UNLIMITED_RATE))
    if "ALLOWED_HOSTS" in env:  # keep production mode, and accept the loopback Host header
        env["ALLOWED_HOSTS"] = f"{env['ALLOWED_HOSTS']},127.0.0.1"
    return env


def wait_ready(url: str, process: subprocess.Popen, log_path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"daphne exited with {process.returncode}:\n{log_tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:  # noqa: S310 (our own http://127.0.0.1)
                if response.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}: {exc.read()[:300]!r}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise BenchError(f"daphne did not answer /readyz within {timeout:.0f}s ({last}):\n{log_tail(log_path)}")


def log_tail(path: Path, lines: int = 30) -> str:
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
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    daphne = str(Path(sys.executable).parent / "daphne")
    argv = taskset(daphne_cpus, [daphne, "-b", "127.0.0.1", "-p", str(port), "etrms.asgi:application"])
    with redis_running() as redis_note, tempfile.TemporaryDirectory(prefix="etrms-bench-") as tmp:
        log_path = Path(tmp) / "daphne.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(argv, cwd=ROOT, env=server_environment(), stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_ready(url, process, log_path)
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
            process_stop(process)


def process_stop(process: subprocess.Popen, *, timeout: float = 20) -> None:
    """Terminate `process` if it still runs; kill it if it has not exited after `timeout` s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process and its threads (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
