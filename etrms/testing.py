"""Faults on purpose (STYLE §12): a Redis of the test's own that it stops and starts,
and pointing this process's Redis clients at it.

Never the shared Redis: the server runs on a unix socket in a private temporary
directory, with an append-only file there (like `make run`'s embedded Redis), so a stop
and a start keep its data.
"""

import contextlib
import shutil
import subprocess
import tempfile
from pathlib import Path

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
    # Every cache alias (sessions included: the session middleware opens its cache on
    # every request), at the same database of the new server.
    settings.CACHES = {
        alias: {**config, "LOCATION": location.url(settings.REDIS_DB_CACHE)}
        for alias, config in originals["CACHES"].items()
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
