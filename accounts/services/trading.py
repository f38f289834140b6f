"""Orders ETRMS itself sends: the circuit-breaker actions of SPEC §5, through the
exchange interface, for ccxt venues and paper alike.

Each action re-syncs the account afterwards so the snapshots (and the risk engine,
through `positions_changed`) see the result at once. A failed re-sync does not undo
or hide the order: it is logged and recorded on the account as a sync failure.
"""

import logging
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from asgiref.sync import async_to_sync

from accounts.exchanges import BUY, LONG, SELL, ExchangeError, OrderRejected, OrderResult
from accounts.models import ExchangeAccount, Position
from accounts.services.exchange_accounts import account_exchange

logger = logging.getLogger("accounts.trading")
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class CancelResult:
    exchange: str
    symbol: str
    cancelled: int | None  # None when the venue does not say how many


def _resync(account: ExchangeAccount) -> None:
    from accounts.services.sync import account_sync

    try:
        account_sync(account=account)
    except ExchangeError as error:
        logger.warning("re-sync of %s after an order failed: %s", account, error.detail)


def position_reduce(*, position: Position, reduce_pct: Decimal, client_order_id: str) -> OrderResult:
    """Send a reduce-only market order for `reduce_pct` % (0 < pct <= 100) of the
    position's size as last synced. `client_order_id` is the idempotency key: a retry
    with the same id does not send a second order where the venue supports it.
    Raises the exchange layer's errors (OrderRejected, ExchangeUnavailable, ...)."""
    reduce_pct = Decimal(reduce_pct)
    if not (0 < reduce_pct <= HUNDRED):
        raise OrderRejected(f"reduce_pct must be in (0, 100], got {reduce_pct}.")
    if position.closed_at is not None:
        raise OrderRejected(f"The {position.symbol} {position.side} position is already closed.")
    amount = position.size if reduce_pct == HUNDRED else (position.size * reduce_pct / HUNDRED)
    amount = amount.quantize(Decimal("1e-10"), rounding=ROUND_DOWN)
    side = SELL if position.side == LONG else BUY
    account = position.account

    async def send() -> OrderResult:
        async with account_exchange(account) as exchange:
            return await exchange.create_reduce_only_market_order(
                position.symbol, side, amount, client_order_id=client_order_id, hedged=position.hedged
            )

    order = async_to_sync(send)()
    _resync(account)
    return order


def position_close(*, position: Position, client_order_id: str) -> OrderResult:
    """Close the whole position with a reduce-only market order (see position_reduce)."""
    return position_reduce(position=position, reduce_pct=HUNDRED, client_order_id=client_order_id)


def orders_cancel_all(*, account: ExchangeAccount, symbol: str) -> CancelResult:
    """Cancel every open order of `account` on `symbol`."""

    async def cancel() -> int | None:
        async with account_exchange(account) as exchange:
            return await exchange.cancel_all_orders(symbol)

    cancelled = async_to_sync(cancel)()
    return CancelResult(exchange=account.exchange, symbol=symbol, cancelled=cancelled)
