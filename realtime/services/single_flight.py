"""Single-flight across processes: however many readers miss the same cache entry at
once, one of them (the leader, holding a Redis lock) calls the exchange; the others wait
for the entry to appear. A leader's failure is kept for a moment under the flight's key,
so the waiters answer with the same error instead of each calling the exchange again.
"""

import json
import time
import uuid
from collections.abc import Callable

from django.conf import settings

from accounts.exchanges import errors as exchange_errors
from etrms.errors import ApplicationError, Unavailable
from etrms.redis_client import platform_redis

FLIGHT_PREFIX = "realtime:flight:"
ERROR_TTL_MS = 2000
POLL_SECONDS = 0.01

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
_release_script = None


def _lock_ms() -> int:
    # A market-data fetch makes its exchange calls concurrently: one timeout, and margin.
    return int((float(settings.EXCHANGE_TIMEOUT_SECONDS) * 2 + 5) * 1000)


def _error_dump(exc: ApplicationError) -> str:
    return json.dumps({"class": type(exc).__name__, "status": exc.status_code, "detail": str(exc.detail)})


def _error_load(raw: bytes) -> ApplicationError:
    data = json.loads(raw)
    cls = getattr(exchange_errors, data["class"], None)
    if isinstance(cls, type) and issubclass(cls, exchange_errors.ExchangeError):
        return cls(data["detail"])
    error = ApplicationError(data["detail"])
    error.status_code = data["status"]
    return error


def _release(client, key: str, token: str) -> None:
    global _release_script
    if _release_script is None:
        _release_script = client.register_script(_RELEASE)
    _release_script(keys=[key], args=[token], client=client)


def single_flight(*, key: str, peek: Callable[[], object], fetch: Callable[[], object]) -> tuple[object, bool]:
    """(value, fetched): the value `peek()` finds once some reader's `fetch()` stored it.

    `fetch()` calls the exchange and writes the cache; it runs in at most one reader at
    a time across every process. `fetched` is True for the reader that ran it.
    """
    client = platform_redis()
    lock, error_key = f"{FLIGHT_PREFIX}{key}", f"{FLIGHT_PREFIX}{key}:error"
    lock_ms = _lock_ms()
    deadline = time.monotonic() + lock_ms / 1000 + 1
    while True:
        token = uuid.uuid4().hex
        if client.set(lock, token, nx=True, px=lock_ms):
            try:
                client.delete(error_key)
                value = peek()  # a flight that ended between our miss and the lock
                if value is not None:
                    return value, False
                try:
                    return fetch(), True
                except ApplicationError as exc:
                    client.set(error_key, _error_dump(exc), px=ERROR_TTL_MS)
                    raise
            finally:
                _release(client, lock, token)
        # Another reader leads: wait for its value (or its error).
        while client.exists(lock):
            value = peek()
            if value is not None:
                return value, False
            if time.monotonic() > deadline:
                raise Unavailable("Timed out waiting for the exchange.")
            time.sleep(POLL_SECONDS)
        value = peek()
        if value is not None:
            return value, False
        raw = client.get(error_key)
        if raw is not None:
            raise _error_load(raw)
        # The leader vanished without a value or an error (killed): lead ourselves.
