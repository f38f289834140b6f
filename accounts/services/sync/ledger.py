"""The account's money side of a sync: the balance row, transfers, peaks and the day.

A transfer is the change of the wallet balance since the last sync that fills, fees and
funding do not explain: `wallet now - wallet then - (realized - fees + funding counted
by this sync)`. A deposit is positive. Transfers never move daily PnL; they move
`Balance.net_transfers`, the day's `transfers`, and the equity peak (a deposit raises
it, a withdrawal lowers it, by the amount), so a transfer is never drawdown.

Known limit: fills are read per symbol for the symbols held before or after the sync,
so a position opened and closed entirely between two syncs on a symbol held neither
time leaves its PnL unexplained and it is counted as a transfer (the monitoring
interval bounds that gap; see docs/decisions.md).
"""

import logging
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db.models import F

from accounts.exchanges import BalanceInfo
from accounts.models import AccountDay, Balance, ExchangeAccount

logger = logging.getLogger("accounts.sync")
ZERO = Decimal(0)
# Below this a wallet difference is the venue's rounding of the amounts it reports.
TRANSFER_TOLERANCE = Decimal("0.000001")


def balance_update(*, account: ExchangeAccount, info: BalanceInfo, explained: Decimal, now: datetime) -> Decimal:
    """Write the balance row and return the transfer this sync found (deposit > 0).
    Caller holds the account's row lock."""
    balance = Balance.objects.select_for_update().filter(account=account).first()
    transfer = ZERO
    if balance is None:
        balance = Balance(account=account, peak_equity=info.equity, peak_equity_at=now)
    else:
        transfer = info.balance - balance.balance - explained
        if abs(transfer) < TRANSFER_TOLERANCE:
            transfer = ZERO
    if transfer:
        logger.info("%s: transfer of %s detected (wallet %s -> %s)", account, transfer, balance.balance, info.balance)
        balance.net_transfers += transfer
        balance.peak_equity = max(ZERO, balance.peak_equity + transfer)
    balance.currency = info.currency
    balance.balance = info.balance
    balance.equity = info.equity
    balance.available = info.available
    balance.margin_used = info.margin_used
    balance.unrealized_pnl = info.unrealized_pnl
    balance.maintenance_margin = info.maintenance_margin
    balance.margin_ratio = info.margin_ratio
    if info.equity > balance.peak_equity or balance.peak_equity_at is None:
        balance.peak_equity, balance.peak_equity_at = info.equity, now
    balance.updated_at = now
    balance.save()
    return transfer


def day_update(
    *, account: ExchangeAccount, info: BalanceInfo, day_pnl: dict[date, Decimal], transfer: Decimal, now: datetime
) -> AccountDay:
    """Today's row: last values, the realized PnL of today's fills and funding, and the
    transfer. Fills dated an earlier day go to that day's row when it exists."""
    today = now.astimezone(UTC).date()
    day = AccountDay.objects.select_for_update().filter(account=account, date=today).first()
    if day is None:
        # The day starts from the last values seen before midnight (yesterday's row),
        # or from this sync when there are none.
        previous = AccountDay.objects.filter(account=account, date=today - timedelta(days=1)).first()
        start = (
            (previous.last_balance, previous.last_equity, previous.last_unrealized)
            if previous
            else (info.balance, info.equity, info.unrealized_pnl)
        )
        day = AccountDay(
            account=account, date=today, start_balance=start[0], start_equity=start[1], start_unrealized=start[2]
        )
    for moment, amount in day_pnl.items():
        if moment >= today:
            day.realized_pnl += amount
        elif not AccountDay.objects.filter(account=account, date=moment).update(
            realized_pnl=F("realized_pnl") + amount
        ):
            logger.info("%s: %s of PnL dated %s has no day row; not counted", account, amount, moment)
    day.transfers += transfer
    day.last_balance, day.last_equity, day.last_unrealized = info.balance, info.equity, info.unrealized_pnl
    day.updated_at = now
    day.save()
    return day
