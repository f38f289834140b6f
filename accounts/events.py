"""What the accounts app tells the rest of ETRMS, through an explicit listener registry.

The risk engine registers its evaluator at startup:

    from accounts.events import on_positions_changed

    @on_positions_changed
    def evaluate(*, user_ids: set, exchange: str, symbols: set) -> None: ...

Services call `positions_changed(...)` through `transaction.on_commit` after every
change of positions or marks (sync, paper fills, mark updates from the feed), so a
listener always reads committed rows. Every sync announces itself, even one that moved
no position: balances (fees, funding, transfers) change equity, leverage, drawdown and
margin ratio, so `symbols` may be empty, meaning "the account changed". A listener that raises is logged and does not
stop the others or the caller: the periodic sweep is the safety net.
"""

import json
import logging
from collections.abc import Callable

from django.conf import settings
from django.db import transaction

logger = logging.getLogger("accounts.events")

positions_changed_listeners: list[Callable] = []

# Other processes hear of changes here (the feed's in-memory risk index reloads those
# users): {"user_ids": [...], "exchange", "symbols": [...]}.
POSITIONS_CHANNEL = settings.REDIS_PUBSUB_PREFIX + "accounts:positions"


def on_positions_changed(listener: Callable) -> Callable:
    """Register `listener(*, user_ids, exchange, symbols)` (idempotent); usable as a decorator."""
    if listener not in positions_changed_listeners:
        positions_changed_listeners.append(listener)
    return listener


def positions_changed(*, user_ids: set, exchange: str, symbols: set, broadcast: bool = True) -> None:
    """Call every listener now, then tell other processes (`broadcast`). Services use
    `positions_changed_on_commit` instead."""
    if not user_ids:
        return
    for listener in list(positions_changed_listeners):
        try:
            listener(user_ids=set(user_ids), exchange=exchange, symbols=set(symbols))
        except Exception:
            logger.exception("positions_changed listener %r failed", listener)
    if broadcast:
        _broadcast(user_ids=user_ids, exchange=exchange, symbols=symbols)


def _broadcast(*, user_ids: set, exchange: str, symbols: set) -> None:
    from etrms.redis_client import platform_redis

    message = {
        "user_ids": sorted(str(user_id) for user_id in user_ids),
        "exchange": exchange,
        "symbols": sorted(symbols),
    }
    try:
        platform_redis().publish(POSITIONS_CHANNEL, json.dumps(message))
    except Exception as error:  # the feed also reloads on its own schedule
        logger.warning("Could not broadcast a position change: %s", error)


def positions_changed_on_commit(*, user_ids: set, exchange: str, symbols: set) -> None:
    """`positions_changed` once the current transaction commits (at once outside one)."""
    if not user_ids:
        return
    user_ids, symbols = set(user_ids), set(symbols)
    transaction.on_commit(lambda: positions_changed(user_ids=user_ids, exchange=exchange, symbols=symbols))
