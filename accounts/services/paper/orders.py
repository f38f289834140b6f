"""Paper orders and fills: market and limit orders filled against the paper books,
resting limit orders matched as prices move, cancels, open orders and the fill history.
Conventions in `accounts.services.paper`."""

import time
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from django.db import transaction
from django.utils import timezone

from accounts.exchanges.base import BUY, LONG, SELL, SHORT, Trade
from accounts.exchanges.errors import OrderRejected, UnknownSymbol
from accounts.exchanges.symbols import normalize_symbol
from accounts.models import PaperFill, PaperOrder, PaperPosition, PaperWallet
from accounts.services.paper.books import ZERO, paper_state_compute, paper_wallet_locked, taker_fee_rate
from accounts.services.paper.markets import paper_markets


def _round_amount(amount: Decimal, step: Decimal) -> Decimal:
    return (amount / step).to_integral_value(rounding=ROUND_DOWN) * step


def _fill(
    *,
    wallet: PaperWallet,
    order: PaperOrder,
    price: Decimal,
    quotes,
    now: datetime,
) -> None:
    """Apply `order` at `price` to the wallet and positions (caller holds the wallet lock)."""
    account_id = wallet.account_id
    side, remaining = order.side, order.amount
    fee_rate = taker_fee_rate()
    fills: list[tuple[str, Decimal, Decimal]] = []  # (position side, amount, realized)

    if wallet.hedge_mode:
        position_side = order.position_side or (LONG if side == BUY else SHORT)
        closing = (position_side == LONG) == (side == SELL)
        to_reduce = [position_side] if closing else []
        opening_side = None if closing else position_side
    else:
        to_reduce = [SHORT if side == BUY else LONG]
        opening_side = LONG if side == BUY else SHORT

    for reduce_side in to_reduce:
        position = PaperPosition.objects.filter(account_id=account_id, symbol=order.symbol, side=reduce_side).first()
        if position is None:
            continue
        quantity = min(remaining, position.size)
        direction = 1 if reduce_side == LONG else -1
        realized = (price - position.entry_price) * quantity * direction
        fills.append((reduce_side, quantity, realized))
        remaining -= quantity
        position.size -= quantity
        if position.size == 0:
            position.delete()
        else:
            position.save(update_fields=["size", "updated_at"])

    if order.reduce_only:
        if not fills:
            raise OrderRejected("ReduceOnly Order is rejected: no position to reduce.", exchange="paper")
        remaining = ZERO  # a reduce-only order never grows or flips a position
    if remaining > 0 and opening_side is not None:
        leverage = wallet.default_leverage
        balance, _ = paper_state_compute(
            wallet,
            list(PaperPosition.objects.filter(account_id=account_id)),
            list(PaperOrder.objects.filter(account_id=account_id, status=PaperOrder.Status.OPEN).exclude(pk=order.pk)),
            quotes,
            now.timestamp(),
        )
        required = remaining * price / leverage + remaining * price * fee_rate
        if required > balance.available:
            if fills:
                remaining = ZERO  # the reducing part stands; the opening part is refused
            else:
                raise OrderRejected(
                    f"Margin is insufficient: {required:.2f} needed, {balance.available:.2f} available.",
                    exchange="paper",
                )
        if remaining > 0:
            position = PaperPosition.objects.filter(
                account_id=account_id, symbol=order.symbol, side=opening_side
            ).first()
            if position is None:
                PaperPosition.objects.create(
                    account_id=account_id,
                    symbol=order.symbol,
                    side=opening_side,
                    size=remaining,
                    entry_price=price,
                    leverage=leverage,
                    opened_at=now,
                )
            else:
                total = position.size + remaining
                position.entry_price = (position.entry_price * position.size + price * remaining) / total
                position.size = total
                position.save(update_fields=["size", "entry_price", "updated_at"])
            fills.append((opening_side, remaining, ZERO))

    filled = sum((amount for _, amount, _ in fills), ZERO)
    total_fee = ZERO
    for position_side, amount, realized in fills:
        fee = amount * price * fee_rate
        total_fee += fee
        wallet.balance += realized - fee
        PaperFill.objects.create(
            order=order,
            account_id=account_id,
            symbol=order.symbol,
            side=order.side,
            position_side=position_side,
            price=price,
            amount=amount,
            fee=fee,
            realized_pnl=realized,
            created_at=now,
        )
    wallet.save(update_fields=["balance", "updated_at"])
    order.filled = filled
    order.average_price = price if filled else None
    order.fee = total_fee
    order.status = PaperOrder.Status.CLOSED
    order.save()


@transaction.atomic
def paper_order_execute(
    *,
    account_id: int,
    symbol: str,
    side: str,
    amount: Decimal,
    type: str = PaperOrder.Type.MARKET,
    price: Decimal | None = None,
    reduce_only: bool = False,
    position_side: str | None = None,
    client_order_id: str | None = None,
) -> PaperOrder:
    """Place a paper order. A market order fills at once at the mark price; a limit
    order fills when marketable, else rests until the price crosses it. A known
    `client_order_id` returns that order without acting again (idempotent retries)."""
    if side not in (BUY, SELL):
        raise OrderRejected(f"Unknown order side {side!r}.", exchange="paper")
    if type not in PaperOrder.Type.values:
        raise OrderRejected(f"Unknown order type {type!r}.", exchange="paper")
    if position_side not in (None, "", LONG, SHORT):
        raise OrderRejected(f"Unknown position side {position_side!r}.", exchange="paper")
    wallet = paper_wallet_locked(account_id)
    if client_order_id:
        existing = PaperOrder.objects.filter(account_id=account_id, client_order_id=client_order_id).first()
        if existing is not None:
            return existing
    quotes = paper_markets()
    symbol = normalize_symbol(symbol)
    if symbol not in quotes:
        raise UnknownSymbol(f"paper does not list {symbol}.")
    quote = quotes[symbol]
    amount = _round_amount(Decimal(amount), quote.spec.step_size)
    if amount <= 0:
        raise OrderRejected(f"Order amount is below the step size {quote.spec.step_size}.", exchange="paper")
    if type == PaperOrder.Type.LIMIT and (price is None or price <= 0):
        raise OrderRejected("A limit order needs a positive price.", exchange="paper")
    now = timezone.now()
    mark = quote.price_at(now.timestamp())
    order = PaperOrder.objects.create(
        account_id=account_id,
        client_order_id=client_order_id or f"paper-{time.time_ns()}",
        symbol=symbol,
        side=side,
        type=type,
        position_side=position_side or "",
        reduce_only=reduce_only,
        amount=amount,
        price=price,
        status=PaperOrder.Status.OPEN,
    )
    marketable = type == PaperOrder.Type.MARKET or (side == BUY and mark <= price) or (side == SELL and mark >= price)
    if marketable:
        _fill(wallet=wallet, order=order, price=mark, quotes=quotes, now=now)
    return order


@transaction.atomic
def paper_orders_match(*, account_id: int) -> int:
    """Settle the account's resting limit orders the price has crossed (filled, or
    rejected when the margin no longer allows them). Returns how many were settled."""
    open_orders = list(
        PaperOrder.objects.filter(account_id=account_id, status=PaperOrder.Status.OPEN).order_by("created_at", "id")
    )
    if not open_orders:
        return 0
    wallet = paper_wallet_locked(account_id)
    quotes = paper_markets()
    now = timezone.now()
    settled = 0
    for order in open_orders:
        quote = quotes.get(order.symbol)
        if quote is None:
            continue
        mark = quote.price_at(now.timestamp())
        if (order.side == BUY and mark <= order.price) or (order.side == SELL and mark >= order.price):
            try:
                with transaction.atomic():
                    _fill(wallet=wallet, order=order, price=order.price, quotes=quotes, now=now)
            except OrderRejected as rejected:
                wallet.refresh_from_db()
                PaperOrder.objects.filter(pk=order.pk).update(
                    status=PaperOrder.Status.REJECTED, reject_reason=str(rejected.detail)[:200]
                )
            settled += 1
    return settled


@transaction.atomic
def paper_orders_cancel_all(*, account_id: int, symbol: str) -> int:
    paper_wallet_locked(account_id)
    return PaperOrder.objects.filter(
        account_id=account_id, symbol=normalize_symbol(symbol), status=PaperOrder.Status.OPEN
    ).update(status=PaperOrder.Status.CANCELED, updated_at=timezone.now())


def paper_open_orders(*, account_id: int, symbol: str) -> list:
    """The account's resting orders on `symbol`, as the exchange interface answers them."""
    from accounts.exchanges.base import OpenOrder

    orders = PaperOrder.objects.filter(account_id=account_id, symbol=normalize_symbol(symbol), status="open")
    return [
        OpenOrder(
            id=str(order.pk),
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            amount=order.amount,
            filled=order.filled,
            price=order.price,
            reduce_only=order.reduce_only,
        )
        for order in orders.order_by("created_at", "id")
    ]


def paper_fills(*, account_id: int, symbol: str, since: datetime | None = None, limit: int = 500) -> list[Trade]:
    fills = PaperFill.objects.filter(account_id=account_id, symbol=normalize_symbol(symbol))
    if since is not None:
        fills = fills.filter(created_at__gte=since)
    return [
        Trade(
            symbol=fill.symbol,
            id=str(fill.pk),
            price=fill.price,
            amount=fill.amount,
            side=fill.side,
            timestamp=fill.created_at,
            order_id=str(fill.order_id),
            fee=fill.fee,
            realized_pnl=fill.realized_pnl,
            position_side=fill.position_side,
        )
        for fill in fills.order_by("created_at", "id")[:limit]
    ]
