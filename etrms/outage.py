"""Dependency outages: which exceptions mean "Redis / the database is unavailable", and
logging them the way SPEC §3 and STYLE §10 ask.

- A request that can do its work without the dependency does it and logs one WARNING
  line (no traceback) for what it skipped: `degraded()`.
- A request whose work *is* the dependency answers 503 (etrms.api.errors).
- A background loop logs the outage once when it starts and once when it ends
  (`OutageLog`), not once per tick.
"""

import logging
import threading
import time

import redis
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from kombu.exceptions import OperationalError as BrokerOperationalError

from etrms.logging import request_id_var

# redis-py's connection errors (BusyLoadingError, a Redis still loading its data after a
# restart, is one), and kombu's wrapper of them when Celery publishes.
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, BrokerOperationalError)
DATABASE_ERRORS = (DatabaseOperationalError, DatabaseInterfaceError)
OUTAGE_ERRORS = REDIS_ERRORS + DATABASE_ERRORS


def dependency_of(exc: BaseException) -> str:
    return "database" if isinstance(exc, DATABASE_ERRORS) else "Redis"


def describe(exc: BaseException) -> str:
    """One line: the dependency and the error, never a traceback."""
    text = " ".join(str(exc).split())[:200]
    return f"{dependency_of(exc)} unavailable ({exc.__class__.__name__}: {text})"


_last_warning = threading.local()


BACKGROUND_REPEAT_SECONDS = 60.0
_background_warned: dict = {}  # {what: monotonic time of the last warning} outside requests


def degraded(logger: logging.Logger, what: str, exc: BaseException) -> None:
    """One WARNING line for work skipped or done another way because a dependency is down
    (once per request for the same `what`: a login checks several rate-limit keys; outside
    a request, at most once a minute for the same `what`: the feed evaluates many users a
    tick)."""
    request_id = request_id_var.get()
    if request_id == "-":
        now = time.monotonic()
        if now - _background_warned.get(what, -BACKGROUND_REPEAT_SECONDS) < BACKGROUND_REPEAT_SECONDS:
            return
        _background_warned[what] = now
    else:
        key = (request_id, what)
        if getattr(_last_warning, "key", None) == key:
            return
        _last_warning.key = key
    logger.warning("%s: %s", what, describe(exc))


class OutageLog:
    """For a loop that retries every tick: log when an outage starts and when it ends."""

    def __init__(self, logger: logging.Logger, what: str):
        self.logger = logger
        self.what = what
        self.down_since: str | None = None

    def failed(self, exc: BaseException) -> None:
        if self.down_since is None:
            self.down_since = describe(exc)
            self.logger.warning("%s: %s; retrying until it answers", self.what, self.down_since)

    def ok(self) -> None:
        if self.down_since is not None:
            self.logger.info("%s: back to normal after: %s", self.what, self.down_since)
            self.down_since = None
