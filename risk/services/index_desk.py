"""The desk-wide totals the risk index keeps in memory (SPEC §5 desk caps): computed once
from every book, then moved tick by tick by the index; and which cap is at which level,
the fact that decides when a tick must evaluate every user."""

from decimal import Decimal

from risk.services import assess
from risk.services.snapshots import ConfigView, DeskTotals

ZERO = Decimal(0)


def desk_compute(books) -> DeskTotals:
    """The totals of `books` (every user's Book): exposures by symbol and exchange,
    equity and daily PnL of the accounts with a balance."""
    desk = DeskTotals()
    for book in books:
        unrealized: dict = {}
        for position in book.positions:
            desk.symbol_net[position.symbol] = desk.symbol_net.get(position.symbol, ZERO) + position.signed_notional
            desk.exchange_exposure[position.exchange] = desk.exchange_exposure.get(position.exchange, ZERO) + abs(
                position.notional
            )
            desk.total_exposure += abs(position.notional)
            unrealized[position.account_id] = unrealized.get(position.account_id, ZERO) + position.unrealized_pnl
        for account in book.accounts.values():
            if account.has_balance:
                upnl = unrealized.get(account.id, ZERO)
                desk.equity += account.balance + upnl
                desk.daily_pnl += account.daily_pnl(upnl)
                desk.balances += 1
    return desk


def desk_levels(desk: DeskTotals, config: ConfigView) -> tuple:
    """Which desk caps are at which level: when this moves, every user is affected."""
    levels = []
    for value, cap in (
        (desk.total_exposure, config.max_total_exposure),
        (assess.leverage_of(desk.total_exposure, desk.equity, has_balance=desk.balances > 0), config.max_leverage),
        (desk.daily_loss, config.daily_loss_limit),
    ):
        if cap is not None:
            levels.append(value is None or value >= cap)
    for symbol, (size_cap, _) in sorted(config.symbol_caps.items()):
        if size_cap is not None:
            levels.append(abs(desk.symbol_net.get(symbol, ZERO)) >= size_cap)
    for exchange, cap in sorted(config.exchange_caps.items()):
        if cap is not None:
            levels.append(desk.exchange_exposure.get(exchange, ZERO) >= cap)
    return tuple(levels)
