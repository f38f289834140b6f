"""The real stack for browser tests: daphne (HTTP and WebSockets) and the market-data
feed as processes on the test database and the test Redis, restartable on the same port."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveStack:
    def __init__(self, database_url: str, *, tick_seconds: float = 0.2):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(
            os.environ,
            DATABASE_URL=database_url,
            PAPER_TICK_SECONDS=str(tick_seconds),
            PYTHONUNBUFFERED="1",
        )
        self.env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set for the browser test's thread only
        self.web: subprocess.Popen | None = None
        self.feed: subprocess.Popen | None = None

    def _spawn(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=self.env)

    def start_web(self) -> None:
        self.web = self._spawn("-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "etrms.asgi:application")
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2):
                    return
            except OSError:
                pass
            if self.web.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"daphne did not answer on {self.url} (exit code {self.web.poll()})")
            time.sleep(0.1)

    def start_feed(self) -> None:
        self.feed = self._spawn("manage.py", "run_feed")

    @staticmethod
    def _stop(process: subprocess.Popen | None) -> None:
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop_web(self) -> None:
        self._stop(self.web)
        self.web = None

    def stop(self) -> None:
        self.stop_web()
        self._stop(self.feed)
        self.feed = None
