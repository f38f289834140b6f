"""Rate limits per user (anonymous: per client IP) and scope, shared by every process
through Redis.

Sliding-window counter: the previous fixed window's count, weighted by how much of it
still overlaps the sliding window, plus the current window's count. One Lua call per
request, atomic across processes; refused requests are not counted.
"""

import time

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from etrms.redis_client import platform_redis

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


class RateLimiter:
    script = None

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
        if RateLimiter.script is None:
            RateLimiter.script = platform_redis().register_script(_SLIDING_WINDOW)
        allowed = RateLimiter.script(
            keys=[f"{prefix}{window_index}", f"{prefix}{window_index - 1}"],
            args=[self.limit, self.window, elapsed, "1" if count else "0"],
        )
        if allowed:
            return None
        return max(1.0, self.window - elapsed)


def client_ip(request) -> str:
    """The client's address, behind `TRUSTED_PROXY_COUNT` proxies (DRF's NUM_PROXIES)."""
    return BaseThrottle().get_ident(request)


class ScopedRateThrottle(BaseThrottle):
    """Scope from the view's `throttle_scope` (risk, config, cache, jobs), else default."""

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
