"""Hand-built books for evaluation tests: exchange accounts, balance snapshots, the
day's start values, open positions and closed trades, written as sync would leave them
(notional = |size x mark|, unrealized PnL on the mark)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from accounts.models import AccountDay, Balance, ClosedTrade, ExchangeAccount, Position

D = Decimal


def account(
    user,
    exchange: str = "paper",
    *,
    balance="100000",
    peak_equity=None,
    maintenance_margin=None,
    day_realized="0",
    day_start_unrealized="0",
    net_transfers="0",
    failed: bool = False,
    with_balance: bool = True,
) -> ExchangeAccount:
    acct = ExchangeAccount.objects.create(user=user, exchange=exchange, last_sync_failed=failed)
    if with_balance:
        now = timezone.now()
        Balance.objects.create(
            account=acct,
            balance=D(balance),
            equity=D(balance),
            peak_equity=D(peak_equity if peak_equity is not None else balance),
            maintenance_margin=D(maintenance_margin) if maintenance_margin is not None else None,
            net_transfers=D(net_transfers),
            updated_at=now,
        )
        AccountDay.objects.create(
            account=acct,
            date=datetime.now(UTC).date(),
            start_balance=D(balance),
            realized_pnl=D(day_realized),
            start_unrealized=D(day_start_unrealized),
            last_balance=D(balance),
            updated_at=now,
        )
    return acct


def position(
    acct: ExchangeAccount,
    symbol: str = "BTCUSDT",
    side: str = "long",
    *,
    size="1",
    entry="100",
    mark=None,
    realized="0",
    peak_pnl=None,
    best_price=None,
    leverage=None,
    opened_at=None,
    mark_age_seconds: float = 0,
    peak_entry_notional=None,
) -> Position:
    size, entry = D(size), D(entry)
    mark = D(mark) if mark is not None else entry
    direction = 1 if side == "long" else -1
    unrealized = (mark - entry) * size * direction
    realized = D(realized)
    now = timezone.now()
    return Position.objects.create(
        account=acct,
        symbol=symbol,
        side=side,
        size=size,
        entry_price=entry,
        peak_entry_notional=abs(size * entry) if peak_entry_notional is None else D(peak_entry_notional),
        mark_price=mark,
        mark_updated_at=now - timedelta(seconds=mark_age_seconds),
        notional=abs(size * mark),
        unrealized_pnl=unrealized,
        realized_pnl=realized,
        leverage=D(leverage) if leverage is not None else None,
        peak_pnl=D(peak_pnl) if peak_pnl is not None else max(realized + unrealized, D(0)),
        best_price=D(best_price) if best_price is not None else mark,
        opened_at=opened_at or now - timedelta(minutes=5),
    )


def closed_trade(acct: ExchangeAccount, symbol: str, pnl, *, minutes_ago: float) -> ClosedTrade:
    closed_at = timezone.now() - timedelta(minutes=minutes_ago)
    closed = Position.objects.create(
        account=acct,
        symbol=symbol,
        side="long",
        size=D(1),
        entry_price=D(100),
        mark_price=D(100),
        mark_updated_at=closed_at,
        notional=D(100),
        opened_at=closed_at - timedelta(minutes=1),
        closed_at=closed_at,
        realized_pnl=D(pnl),
    )
    return ClosedTrade.objects.create(
        position=closed,
        account=acct,
        symbol=symbol,
        side="long",
        size=D(1),
        entry_price=D(100),
        realized_pnl=D(pnl),
        opened_at=closed.opened_at,
        closed_at=closed_at,
    )
