"""Rate limits per user (anonymous: per client IP) and scope, shared by every process
through Redis.

Sliding-window counter: the previous fixed window's count, weighted by how much of it
still overlaps the sliding window, plus the current window's count. One Lua call per
request, atomic across processes; refused requests are not counted.

While Redis is unavailable the same counter runs in this process's memory with the same
limits (SPEC §3), so a Redis outage never turns into 500s or into no limit at all. Each
process then counts on its own: a client spread over N web processes gets up to N times
the limit until Redis answers again, and the counts do not carry over either way.
"""

import logging
import threading
import time

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from etrms.outage import REDIS_ERRORS, degraded
from etrms.redis_client import platform_redis

logger = logging.getLogger("etrms.throttles")

_SLIDING_WINDOW = """
local current_key, previous_key = KEYS[1], KEYS[2]
local limit, window, elapsed = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local count = ARGV[4] == '1'
local current = tonumber(redis.call('GET', current_key) or '0')
local previous = tonumber(redis.call('GET', previous_key) or '0')
local weighted = previous * (window - elapsed) / window + current
if weighted + 1 > limit then
  return 0
end
if count then
  redis.call('INCR', current_key)
  redis.call('EXPIRE', current_key, window * 2)
end
return 1
"""

_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """'60/min' -> (60, 60)."""
    count, _, period = rate.partition("/")
    return int(count), _PERIODS[period.strip().lower()]


class LocalWindows:
    """The sliding-window counter of `_SLIDING_WINDOW`, in this process's memory."""

    PRUNE_EVERY = 1000

    def __init__(self):
        self._counts: dict[str, tuple[int, float]] = {}  # key -> (count, expires at)
        self._lock = threading.Lock()
        self._inserts = 0

    def run(self, current_key: str, previous_key: str, *, limit: int, window: int, elapsed: float, count: bool):
        now = time.monotonic()
        with self._lock:
            current = self._live(current_key, now)
            previous = self._live(previous_key, now)
            if previous * (window - elapsed) / window + current + 1 > limit:
                return 0
            if count:
                self._counts[current_key] = (current + 1, now + window * 2)
                self._inserts += 1
                if self._inserts % self.PRUNE_EVERY == 0:
                    self._counts = {key: entry for key, entry in self._counts.items() if entry[1] > now}
            return 1

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()

    def _live(self, key: str, now: float) -> int:
        entry = self._counts.get(key)
        return entry[0] if entry is not None and entry[1] > now else 0


local_windows = LocalWindows()


class RateLimiter:
    script = None
    # After a failed call, requests of the next second count locally without trying Redis
    # (a Redis that does not answer would otherwise cost every request its timeouts).
    RETRY_REDIS_AFTER_SECONDS = 1.0
    redis_down_until = 0.0

    def __init__(self, scope: str, rate: str):
        self.scope = scope
        self.limit, self.window = parse_rate(rate)

    def hit(self, ident: str, *, now: float | None = None) -> float | None:
        """Count one request for `ident`; None if allowed, else seconds to wait."""
        return self._run(ident, now=now, count=True)

    def blocked_for(self, idents: list[str]) -> float | None:
        """Without counting: seconds to wait if any of `idents` is at its limit."""
        waits = [wait for ident in idents if (wait := self._run(ident, now=None, count=False)) is not None]
        return max(waits) if waits else None

    def _run(self, ident: str, *, now: float | None, count: bool) -> float | None:
        now = time.time() if now is None else now
        window_index = int(now // self.window)
        elapsed = now - window_index * self.window
        prefix = f"ratelimit:{self.scope}:{ident}:"
        keys = [f"{prefix}{window_index}", f"{prefix}{window_index - 1}"]
        allowed = None
        if time.monotonic() >= RateLimiter.redis_down_until:
            try:
                if RateLimiter.script is None:
                    RateLimiter.script = platform_redis().register_script(_SLIDING_WINDOW)
                allowed = RateLimiter.script(keys=keys, args=[self.limit, self.window, elapsed, "1" if count else "0"])
            except REDIS_ERRORS as exc:
                RateLimiter.redis_down_until = time.monotonic() + self.RETRY_REDIS_AFTER_SECONDS
                degraded(logger, "rate limits: counting in this process", exc)
        if allowed is None:
            allowed = local_windows.run(*keys, limit=self.limit, window=self.window, elapsed=elapsed, count=count)
        if allowed:
            return None
        return max(1.0, self.window - elapsed)


def client_ip(request) -> str:
    """The client's address, behind `TRUSTED_PROXY_COUNT` proxies (DRF's NUM_PROXIES)."""
    return BaseThrottle().get_ident(request)


class ScopedRateThrottle(BaseThrottle):
    """Scope from the view's `throttle_scope` (risk, config, cache, jobs, check_order), else default."""

    def allow_request(self, request, view) -> bool:
        scope = getattr(view, "throttle_scope", "default")
        limiter = RateLimiter(scope, settings.RATE_LIMITS[scope])
        if request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{client_ip(request)}"
        self._wait = limiter.hit(ident)
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait
