"""The pre-trade check `POST /api/v1/risk/check-order` (SPEC §12, issue 15).

Loads what the rules need with the evaluation's loaders: the user's book and the
desk's totals for the caps configured in one query compiled once per configuration
shape (`request_loads.book_and_desk_load`, as `POST /risk/evaluate`), the cached
configuration, the user's enabled limits, the rules tables and the trading states
cached per index version, and the user's resting orders on that symbol through the
exchange interface (paper reads its book); then decides with the pure
`check_order_rules.order_assess`. An order otherwise allowed then takes a slot of the
user's order rate (`max_orders_per_minute`, global config), counted in Redis so every
web process shares it; a refused check takes none. The check writes nothing else:
it raises no alert and moves no state.
"""

import logging
import threading
import time
import uuid
from collections import deque
from decimal import Decimal

from asgiref.sync import async_to_sync
from django.utils import timezone

from etrms.errors import NotFound
from etrms.outage import REDIS_ERRORS, degraded
from etrms.redis_client import platform_redis
from risk.constants import LimitType
from risk.models import ExchangeConfig, GlobalConfig, SymbolConfig, TradingLevel, TradingState
from risk.services import assess
from risk.services.check_order_rules import (
    Breach,
    CheckInputs,
    CheckResult,
    OrderRequest,
    OrderRules,
    order_assess,
)
from risk.services.request_loads import book_and_desk_load, paper_resting_load
from risk.services.snapshots import config_view_get, limits_load
from risk.services.trading_state import effective_of

logger = logging.getLogger(__name__)

RATE_WINDOW_SECONDS = 60
CHECKED_LIMIT_TYPES = frozenset({LimitType.POSITION_SIZE, LimitType.TOTAL_EXPOSURE, LimitType.LEVERAGE})
RATE_KEY = "risk:order-rate:{user_id}"
# An exact sliding window: one sorted-set member per allowed check, scored by its time.
_RATE_TAKE = """
local key, now, window, cap, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count + 1 > cap then
  return {0, count}
end
redis.call('ZADD', key, now, member)
redis.call('EXPIRE', key, window + 1)
return {1, count + 1}
"""

_rules_lock = threading.Lock()
_rules_cache: dict = {}
_local_rates: dict = {}  # user id -> deque of times, while Redis is down
LIMITS_CACHED_USERS = 4096  # per process; the whole cache is dropped when the version moves


def _versioned(version: int) -> dict:
    """What the check reads that only changes with `risk:index:version` (limits,
    configuration and trading states all bump it after commit): the rules tables, every
    trading state row (one per level and scope: few), and users' enabled limits
    (filled on demand). Rebuilt when the version moves; never cached while Redis is
    down (version -1)."""
    with _rules_lock:
        cached = _rules_cache.get("versioned")
        if cached is not None and cached["version"] == version and version >= 0:
            return cached
    symbols = SymbolConfig.objects.values_list("symbol", "trading_enabled", "max_order_notional")
    global_rate = GlobalConfig.objects.filter(pk=GlobalConfig.SINGLETON_PK).values_list(
        "max_orders_per_minute", flat=True
    )
    fresh = {
        "version": version,
        "symbols": {symbol: (enabled, cap) for symbol, enabled, cap in symbols},
        "exchanges": dict(ExchangeConfig.objects.values_list("exchange", "trading_enabled")),
        "rate": global_rate.first(),
        "states": list(TradingState.objects.all()),
        "limits": {},
    }
    with _rules_lock:
        _rules_cache["versioned"] = fresh
    return fresh


def order_rules_get(*, version: int, exchange: str, symbol: str) -> OrderRules:
    tables = _versioned(version)
    symbol_enabled, order_cap = tables["symbols"].get(symbol, (True, None))
    return OrderRules(
        symbol_trading_enabled=symbol_enabled,
        exchange_trading_enabled=tables["exchanges"].get(exchange, True),
        max_order_notional=order_cap,
        max_orders_per_minute=tables["rate"],
    )


def _limits_get(version: int, user_id) -> list:
    tables = _versioned(version)
    limits = tables["limits"].get(user_id)
    if limits is None:
        limits = [v for v in limits_load(user_id=user_id) if v.limit_type in CHECKED_LIMIT_TYPES]
        if len(tables["limits"]) >= LIMITS_CACHED_USERS:
            tables["limits"].clear()
        tables["limits"][user_id] = limits
    return limits


def _states_get(version: int, user_id) -> list:
    return [
        row
        for row in _versioned(version)["states"]
        if row.level != TradingLevel.USER or str(row.user_id) == str(user_id)
    ]


def order_rules_cache_clear() -> None:
    with _rules_lock:
        _rules_cache.clear()


def _venue_read(
    user_id, account_id: int, exchange: str, symbol: str, *, need_mark: bool
) -> tuple[list, Decimal | None]:
    """The user's resting orders on `symbol` and, when asked, the venue's mark: paper's
    own book (one compiled query) and price, in this process with no exchange session;
    else the venue through the exchange interface."""
    from accounts.exchanges import PAPER
    from accounts.selectors import account_get
    from accounts.services.exchange_accounts import account_exchange

    if exchange == PAPER:
        from accounts.services.paper import paper_price

        orders = paper_resting_load(user_id=user_id, account_id=account_id, symbol=symbol)
        return orders, paper_price(symbol) if need_mark else None
    client = account_exchange(account_get(account_id=account_id))

    async def read():
        async with client:
            orders = await client.fetch_open_orders(symbol)
            mark = (await client.fetch_marks([symbol]))[symbol].price if need_mark else None
            return orders, mark

    return async_to_sync(read)()


def order_rate_take(*, user_id, cap: int, now: float | None = None) -> tuple[bool, int]:
    """Take one slot of the user's order rate: (allowed, orders in the last minute
    counting this one when allowed). Shared by every process through Redis; while Redis
    is down each process counts alone (logged once)."""
    now = time.time() if now is None else now
    key = RATE_KEY.format(user_id=user_id)
    try:
        client = platform_redis()
        allowed, count = client.eval(
            _RATE_TAKE, 1, key, repr(now), RATE_WINDOW_SECONDS, cap, f"{now!r}:{uuid.uuid4().hex[:8]}"
        )
        return bool(allowed), int(count)
    except REDIS_ERRORS as exc:
        degraded(logger, "order rate: counting in this process", exc)
    with _rules_lock:
        times = _local_rates.setdefault(str(user_id), deque())
        while times and times[0] <= now - RATE_WINDOW_SECONDS:
            times.popleft()
        if len(times) + 1 > cap:
            return False, len(times)
        times.append(now)
        return True, len(times)


def order_check(*, user_id, order: OrderRequest) -> CheckResult:
    """Decide whether `order` may be sent for `user_id`. A user without an account on
    the exchange gets a 404."""
    config = config_view_get()
    book, desk = book_and_desk_load(
        user_id=user_id, config=config, now=timezone.now(), desk_scope=({order.symbol}, {order.exchange})
    )
    account = next((a for a in book.accounts.values() if a.exchange == order.exchange), None)
    if account is None:
        raise NotFound(f"You have no {order.exchange} account.")
    has_position = any(p.exchange == order.exchange and p.symbol == order.symbol for p in book.positions)
    resting, mark = _venue_read(
        user_id, account.id, order.exchange, order.symbol, need_mark=order.price is None and not has_position
    )
    rows = _states_get(config.version, user_id)
    inputs = CheckInputs(
        book=book,
        metrics=assess.metrics_compute(book),
        limits=_limits_get(config.version, user_id),
        config=config,
        desk=desk,
        rules=order_rules_get(version=config.version, exchange=order.exchange, symbol=order.symbol),
        state=effective_of(rows, exchange=order.exchange),
        resting=resting,
        mark=mark,
    )
    result = order_assess(order, inputs)
    cap = inputs.rules.max_orders_per_minute
    if result.allowed and cap is not None:
        allowed, count = order_rate_take(user_id=user_id, cap=cap)
        if not allowed:
            result.allowed = False
            result.breaches.append(
                Breach(None, "config", "max_orders_per_minute", Decimal(count), Decimal(count + 1), Decimal(cap))
            )
            result.reasons.append(
                f"Order rate: {count} orders were allowed in the last minute, the desk's cap is {cap} a minute."
            )
    return result
