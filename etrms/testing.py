"""Faults on purpose (STYLE §12): a Redis of the test's own that it stops and starts,
and pointing this process's Redis clients at it; a relay to PostgreSQL that the test cuts.

Never the shared Redis: the server runs on a unix socket in a private temporary
directory, with an append-only file there (like `make run`'s embedded Redis), so a stop
and a start keep its data. Never the shared PostgreSQL either: processes reach the test
database through a `DatabaseRelay`, and the database is "down" for them while the relay is.
"""

import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from etrms import embedded_redis
from etrms.redis_urls import RedisLocation


class PrivateRedis:
    def __init__(self):
        # A short path: unix socket paths are limited to about 100 bytes.
        self.dir = Path(tempfile.mkdtemp(prefix="etrms-r-"))
        self.socket = self.dir / "redis.sock"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> "PrivateRedis":
        self.process = embedded_redis.start(self.socket)
        return self

    def stop(self) -> None:
        """Stop the server (SIGTERM: it flushes its append-only file first)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None
        self.socket.unlink(missing_ok=True)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def redis_clients_pointed_at(url: str, settings):
    """Point this process's Redis clients (platform state, rate limits, cache, channel
    layer, Celery's broker) at `url` for the duration; `settings` is pytest-django's
    fixture. Lua scripts other modules registered on the old client keep using it."""
    from etrms.api.throttles import RateLimiter
    from etrms.celery import app
    from etrms.redis_client import platform_redis

    location = RedisLocation.parse(url)
    original_broker = app.conf.broker_url
    names = ("REDIS_PLATFORM_URL", "CACHES", "CHANNEL_LAYERS")
    originals = {name: getattr(settings, name) for name in names}

    def reset(broker_url: str) -> None:
        app.conf.broker_url = broker_url
        # Drop the app's references to its connection and producer pools; the next use
        # takes kombu's pools for the new URL. (Closing them would not do: kombu keeps
        # one pool per URL for the process, and the old URL's pool is used again after.)
        app._after_fork()
        platform_redis.cache_clear()
        RateLimiter.script = None  # a script is bound to the client that registered it

    settings.REDIS_PLATFORM_URL = location.url(settings.REDIS_DB_PLATFORM)
    # Every cache alias (default and the three cache types) keeps its options, on `url`.
    settings.CACHES = {
        alias: {**conf, "LOCATION": location.url(settings.REDIS_DB_CACHE)}
        for alias, conf in originals["CACHES"].items()
    }
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [location.url(settings.REDIS_DB_CHANNELS)]},
        }
    }
    reset(location.celery_url(settings.REDIS_DB_BROKER))
    try:
        yield
    finally:
        for name, value in originals.items():
            setattr(settings, name, value)
        reset(original_broker)


class DatabaseRelay:
    """A TCP relay to the test's PostgreSQL. `down()` drops every connection through it
    and stops listening, so its clients see what a PostgreSQL restart shows them (the
    connection lost, then "connection refused"); `up()` listens again on the same port.
    The test's own connection does not pass through it."""

    def __init__(self, database_url: str):
        self.parts = urlsplit(database_url)
        self.target = (self.parts.hostname or "127.0.0.1", self.parts.port or 5432)
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """`database_url` with the relay's address instead of the server's."""
        auth = self.parts.netloc.rpartition("@")[0]
        netloc = f"{auth}@127.0.0.1:{self.port}" if auth else f"127.0.0.1:{self.port}"
        return urlunsplit(self.parts._replace(netloc=netloc))

    def up(self) -> "DatabaseRelay":
        self._listener = socket.create_server(("127.0.0.1", self.port))  # SO_REUSEADDR: the same port again
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()
        return self

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
                server = socket.create_connection(self.target)
            except OSError:
                if self._listener is not listener:
                    return  # down() closed it
                continue
            with self._lock:
                self._sockets.update((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
