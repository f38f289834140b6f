"""Deterministic random-walk prices of the paper exchange.

log(price / base) is the sum of two Brownian bridges pinned to 0 at the ends of their
periods: a fast one over 2**16 ticks (about 18 h at one tick a second) carrying the
market's volatility, and a slow one over 2**24 ticks (about 194 days) for the drift of
weeks. A bridge is built by midpoint displacement with normals drawn from a hash of
(seed, symbol, component, period, point), so the price at any moment is computed
directly, in about 40 hashes, identical in every process and on every machine that
uses the same seed: the web, the worker and the feed all see one price without sharing
state. Prices move once per tick (`PAPER_TICK_SECONDS`).
"""

import hashlib
import math
import struct
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache

_SECONDS_PER_YEAR = 365 * 24 * 3600
_FAST_LEVELS, _SLOW_LEVELS = 16, 24
_SLOW_VOL_SHARE = 0.5  # the slow bridge's volatility relative to the market's


@dataclass(frozen=True)
class PaperMarketSpec:
    symbol: str
    base: str
    quote: str
    base_price: Decimal
    volatility: float  # annualised, 0.6 = 60 %
    tick_size: Decimal
    step_size: Decimal
    maintenance_margin_rate: Decimal = Decimal("0.005")
    max_leverage: int = 50


DEFAULT_MARKETS: dict[str, PaperMarketSpec] = {
    spec.symbol: spec
    for spec in (
        PaperMarketSpec("BTCUSDT", "BTC", "USDT", Decimal(60000), 0.6, Decimal("0.1"), Decimal("0.001")),
        PaperMarketSpec("ETHUSDT", "ETH", "USDT", Decimal(3000), 0.75, Decimal("0.01"), Decimal("0.001")),
        PaperMarketSpec("SOLUSDT", "SOL", "USDT", Decimal(150), 0.9, Decimal("0.001"), Decimal("0.01")),
    )
}


def _normal(*key) -> float:
    digest = hashlib.blake2b(":".join(map(str, key)).encode(), digest_size=16).digest()
    first, second = struct.unpack("<QQ", digest)
    u1 = (first + 1) / 2.0**64  # (0, 1]
    u2 = second / 2.0**64
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def _bridge(seed: int, symbol: str, component: str, levels: int, tick: int, sigma: float) -> float:
    """The bridge's value at `tick` (sigma: standard deviation per tick)."""
    span = 1 << levels
    period, offset = divmod(tick, span)
    low, high, value_low, value_high = 0, span, 0.0, 0.0
    while offset not in (low, high):
        middle = (low + high) // 2
        value_middle = (value_low + value_high) / 2 + sigma * math.sqrt((high - low) / 4) * _normal(
            seed, symbol, component, period, middle
        )
        if offset < middle:
            high, value_high = middle, value_middle
        else:
            low, value_low = middle, value_middle
    return value_low if offset == low else value_high


@lru_cache(maxsize=8192)
def log_return(seed: int, symbol: str, volatility: float, tick_seconds: float, tick: int) -> float:
    sigma = volatility * math.sqrt(tick_seconds / _SECONDS_PER_YEAR)
    fast = _bridge(seed, symbol, "fast", _FAST_LEVELS, tick, sigma)
    slow = _bridge(seed, symbol, "slow", _SLOW_LEVELS, tick, sigma * _SLOW_VOL_SHARE)
    return fast + slow


def walk_price(spec: PaperMarketSpec, *, at: float, seed: int, tick_seconds: float) -> Decimal:
    """The market's price at unix time `at`, rounded to its tick size."""
    tick = int(at // tick_seconds)
    raw = float(spec.base_price) * math.exp(log_return(seed, spec.symbol, spec.volatility, tick_seconds, tick))
    return quantize_price(Decimal(repr(raw)), spec.tick_size)


def quantize_price(price: Decimal, tick_size: Decimal) -> Decimal:
    ticks = (price / tick_size).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    return max(ticks, Decimal(1)) * tick_size
