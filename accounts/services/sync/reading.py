"""Reading the venue for one sync: positions, balance, marks, then fills and funding.

All of it happens outside any transaction (`account_sync` reconciles afterwards). The
order matters: the balance is read after the positions, and the fills after the
balance, so every fill the balance reflects is among the fills read (a fill landing in
the instant between the two reads is counted now and reflected in the next balance:
it shows as a transfer and its reversal in two consecutive syncs, which cancel).
"""

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.utils import timezone

from accounts.exchanges import BalanceInfo, ExchangeError, FundingPayment, Mark, PositionInfo, Trade
from accounts.models import ExchangeAccount
from accounts.services.exchange_accounts import account_exchange

logger = logging.getLogger("accounts.sync")


@dataclass
class VenueSnapshot:
    fetched_at: datetime  # when the read started (orders syncs of one account)
    balance: BalanceInfo
    positions: list[PositionInfo]
    positions_received_at: datetime  # when the positions answer arrived
    marks: dict[str, Mark] = field(default_factory=dict)
    fills: dict[str, list[Trade]] = field(default_factory=dict)
    funding: dict[str, list[FundingPayment]] = field(default_factory=dict)


def cursor_since(cursor: dict | None) -> datetime | None:
    if not cursor:
        return None
    return datetime.fromtimestamp(cursor["ms"] / 1000, tz=UTC)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def new_items(items, cursor: dict | None):
    """The items after `cursor` ({"ms", "ids"}), and the cursor past them."""
    fresh = []
    for item in items:
        at = ms(item.timestamp)
        if cursor and (at < cursor["ms"] or (at == cursor["ms"] and str(item.id) in cursor["ids"])):
            continue
        fresh.append(item)
    if not fresh:
        return fresh, cursor
    newest = max(ms(item.timestamp) for item in fresh)
    ids = [str(item.id) for item in fresh if ms(item.timestamp) == newest]
    if cursor and cursor["ms"] == newest:
        ids = sorted(set(ids) | set(cursor["ids"]))
    return fresh, {"ms": newest, "ids": ids}


async def read_venue(account: ExchangeAccount, open_symbols: set[str], fetched_at: datetime) -> VenueSnapshot:
    async with account_exchange(account) as exchange:
        positions = await exchange.fetch_positions()
        positions_received_at = timezone.now()
        balance = await exchange.fetch_balance(positions=positions)
        snapshot = VenueSnapshot(
            fetched_at=fetched_at,
            balance=balance,
            positions=positions,
            positions_received_at=positions_received_at,
        )
        held = sorted({position.symbol for position in positions})
        try:
            # One call for every symbol where the venue allows it; each mark stamped
            # when its answer arrived (a slow venue makes marks older, not younger).
            snapshot.marks = await exchange.fetch_marks(held)
        except ExchangeError as error:
            logger.warning("%s: mark prices unavailable (%s); using the positions' marks", account, error.detail)
        for symbol in sorted(open_symbols | set(held)):
            since = cursor_since(account.fill_cursors.get(symbol)) or account.last_synced_at
            if since is None:
                continue  # first sync: no history is attributed
            snapshot.fills[symbol] = await exchange.fetch_my_trades(symbol, since=since)
            funding_since = cursor_since(account.fill_cursors.get(f"{symbol}:funding")) or account.last_synced_at
            snapshot.funding[symbol] = await exchange.fetch_funding_payments(symbol, since=funding_since)
        return snapshot
