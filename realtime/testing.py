"""Real daphne processes for end-to-end WebSocket tests and benchmarks: each on a free
port, on this run's database and Redis, with its own fast registry clocks and a file
limit high enough for thousands of sockets."""

import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOFILE = 8192


def raise_nofile(wanted: int = NOFILE) -> None:
    """Raise this process's soft RLIMIT_NOFILE to `wanted` (within the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DaphneProcess:
    """`daphne etrms.asgi:application` on 127.0.0.1:<free port>."""

    FAST_CLOCKS = {"WS_REGISTRY_TTL_SECONDS": "3", "WS_HEARTBEAT_SECONDS": "0.5", "PYTHONUNBUFFERED": "1"}

    def __init__(self, *, database_url: str | None = None, env: dict | None = None):
        self.port = free_port()
        self.env = dict(os.environ, **self.FAST_CLOCKS, **(env or {}))
        self.env.pop("DB_POOL", None)
        if database_url:
            self.env["DATABASE_URL"] = database_url
        self.process: subprocess.Popen | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/ws"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> "DaphneProcess":
        return self.spawn().wait_ready(timeout)

    def spawn(self) -> "DaphneProcess":
        """Start the process without waiting for it: several boot at once, then
        `wait_ready` each (a boot is seconds of imports)."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "etrms.asgi:application"],
            cwd=ROOT,
            env=self.env,
            preexec_fn=raise_nofile,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self

    def wait_ready(self, timeout: float = 30) -> "DaphneProcess":
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.http_url}/healthz", timeout=1):  # noqa: S310 (our own http://127.0.0.1)
                    return self
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"daphne exited with {self.process.returncode}") from None
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError("daphne did not answer /healthz") from None
                time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as a crash."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
