"""Sync: bring an account's balance and position snapshots up to date from its exchange.

One sync = one read of the venue (positions, balance, then the fills and funding since
the last sync for every symbol involved) outside any transaction, then one transaction
that reconciles the snapshots under a lock on the account:

- a position the venue lists and ETRMS does not is opened; one ETRMS holds open and
  the venue no longer lists is closed, with a `ClosedTrade` carrying its net result;
  a flip to the other side is a close plus an open (tracking restarts);
- realized PnL since opening accumulates from the fills: the venue's realized figure
  (Binance's `realizedPnl`; computed from the entry price where a venue gives none),
  minus fees, plus funding; a fill goes to the side it names (hedge mode) or, in
  one-way mode, to the position it reduces, else to the one it opens;
- peak PnL and best mark since opening, peak equity and the UTC day's start values
  are kept for the risk engine (SPEC §4, §5).

Fills are counted exactly once: a cursor per symbol (time and ids) advances in the same
transaction. On the first sync of an account nothing before it is counted (ETRMS
cannot know the history of positions it has never seen), and a position opened and
closed entirely between two syncs is not recorded. A failed read marks the account
(`last_sync_failed`, which makes its positions stale) and re-raises.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from asgiref.sync import async_to_sync
from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import NotFound

from accounts.events import positions_changed_on_commit
from accounts.exchanges import BUY, LONG, SHORT, BalanceInfo, ExchangeError, FundingPayment, PositionInfo, Trade
from accounts.models import AccountDay, Balance, ClosedTrade, ExchangeAccount, MonitoringState, Position
from accounts.services.exchange_accounts import account_exchange
from etrms.api.errors import Conflict

logger = logging.getLogger("accounts.sync")
ZERO = Decimal(0)


@dataclass
class VenueSnapshot:
    fetched_at: datetime
    balance: BalanceInfo
    positions: list[PositionInfo]
    fills: dict[str, list[Trade]] = field(default_factory=dict)
    funding: dict[str, list[FundingPayment]] = field(default_factory=dict)


@dataclass
class SyncResult:
    account_id: int
    exchange: str
    user_id: str
    skipped: bool = False
    opened: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    equity: Decimal = ZERO

    def as_dict(self) -> dict:
        return {
            "account_id": self.account_id,
            "exchange": self.exchange,
            "user_id": self.user_id,
            "skipped": self.skipped,
            "opened": self.opened,
            "updated": self.updated,
            "closed": self.closed,
            "equity": str(self.equity),
        }


# --- reading the venue ----------------------------------------------------------------
def _cursor_since(cursor: dict | None) -> datetime | None:
    if not cursor:
        return None
    return datetime.fromtimestamp(cursor["ms"] / 1000, tz=UTC)


async def _read_venue(account: ExchangeAccount, open_symbols: set[str], fetched_at: datetime) -> VenueSnapshot:
    async with account_exchange(account) as exchange:
        positions = await exchange.fetch_positions()
        balance = await exchange.fetch_balance(positions=positions)
        snapshot = VenueSnapshot(fetched_at=fetched_at, balance=balance, positions=positions)
        for symbol in sorted(open_symbols | {position.symbol for position in positions}):
            since = _cursor_since(account.fill_cursors.get(symbol)) or account.last_synced_at
            if since is None:
                continue  # first sync: no history is attributed
            snapshot.fills[symbol] = await exchange.fetch_my_trades(symbol, since=since)
            funding_since = _cursor_since(account.fill_cursors.get(f"{symbol}:funding")) or account.last_synced_at
            snapshot.funding[symbol] = await exchange.fetch_funding_payments(symbol, since=funding_since)
        return snapshot


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _new_items(items, cursor: dict | None):
    """The items after `cursor` ({"ms", "ids"}), and the cursor past them."""
    fresh = []
    for item in items:
        ms = _ms(item.timestamp)
        if cursor and (ms < cursor["ms"] or (ms == cursor["ms"] and str(item.id) in cursor["ids"])):
            continue
        fresh.append(item)
    if not fresh:
        return fresh, cursor
    newest = max(_ms(item.timestamp) for item in fresh)
    ids = [str(item.id) for item in fresh if _ms(item.timestamp) == newest]
    if cursor and cursor["ms"] == newest:
        ids = sorted(set(ids) | set(cursor["ids"]))
    return fresh, {"ms": newest, "ids": ids}


# --- reconciling ----------------------------------------------------------------------
def _fill_side(trade: Trade, before: dict) -> str:
    if trade.position_side in (LONG, SHORT):
        return trade.position_side
    reduces = SHORT if trade.side == BUY else LONG
    if (trade.symbol, reduces) in before:
        return reduces
    return LONG if trade.side == BUY else SHORT


def _track(position: Position, mark: Decimal) -> None:
    """Best mark and peak PnL since opening, after the mark or PnL moved."""
    if position.side == LONG:
        position.best_price = max(position.best_price or mark, mark)
    else:
        position.best_price = min(position.best_price or mark, mark)
    position.peak_pnl = max(position.peak_pnl, position.realized_pnl + position.unrealized_pnl)


def _apply_venue_position(position: Position, venue: PositionInfo, fetched_at: datetime) -> None:
    position.size = venue.size
    position.entry_price = venue.entry_price
    position.hedged = venue.hedged
    position.leverage = venue.leverage
    position.liquidation_price = venue.liquidation_price
    position.margin_ratio = venue.margin_ratio
    position.maintenance_margin = venue.maintenance_margin
    if position.pk and position.mark_updated_at and position.mark_updated_at > fetched_at:
        # The feed moved the mark after this read: keep its newer mark.
        mark = position.mark_price
        position.unrealized_pnl = (mark - venue.entry_price) * venue.size * position.direction
    else:
        mark = venue.mark_price if venue.mark_price is not None else (position.mark_price or venue.entry_price)
        position.mark_price = mark
        position.mark_updated_at = fetched_at
        position.unrealized_pnl = venue.unrealized_pnl
    position.notional = abs(venue.size * mark)
    _track(position, mark)


def _balance_update(account: ExchangeAccount, info: BalanceInfo, now: datetime) -> None:
    balance = Balance.objects.select_for_update().filter(account=account).first()
    if balance is None:
        balance = Balance(account=account, peak_equity=info.equity, peak_equity_at=now)
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
            account=account,
            date=today,
            start_balance=start[0],
            start_equity=start[1],
            start_unrealized=start[2],
        )
    day.last_balance, day.last_equity, day.last_unrealized = info.balance, info.equity, info.unrealized_pnl
    day.updated_at = now
    day.save()


@transaction.atomic
def _reconcile(account_id: int, snapshot: VenueSnapshot) -> SyncResult:
    account = ExchangeAccount.objects.select_for_update().get(pk=account_id)
    result = SyncResult(account_id=account.pk, exchange=account.exchange, user_id=str(account.user_id))
    if account.last_synced_at and account.last_synced_at > snapshot.fetched_at:
        result.skipped = True  # a sync that read the venue later has already written
        return result
    now = timezone.now()
    before = {
        (position.symbol, position.side): position
        for position in Position.objects.select_for_update().filter(account=account, closed_at__isnull=True)
    }
    venue = {(position.symbol, position.side): position for position in snapshot.positions}
    cursors = dict(account.fill_cursors)

    # Fills and funding since the last sync, per (symbol, side).
    pnl: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    exits: dict[tuple[str, str], tuple[Decimal, datetime]] = {}
    first_fill: dict[tuple[str, str], datetime] = {}
    for symbol, trades in snapshot.fills.items():
        fresh, cursors[symbol] = _new_items(trades, cursors.get(symbol))
        for trade in fresh:
            side = _fill_side(trade, before)
            key = (symbol, side)
            held = before.get(key)
            reducing = (side == LONG) == (trade.side != BUY)
            realized = trade.realized_pnl
            if realized is None:
                realized = (
                    (trade.price - held.entry_price) * trade.amount * held.direction if reducing and held else ZERO
                )
            pnl[key] += realized - trade.fee
            if reducing:
                exits[key] = (trade.price, trade.timestamp)
            first_fill.setdefault(key, trade.timestamp)
    for symbol, payments in snapshot.funding.items():
        fresh, cursors[f"{symbol}:funding"] = _new_items(payments, cursors.get(f"{symbol}:funding"))
        holders = [key for key in {**before, **venue} if key[0] == symbol]
        if not holders or not fresh:
            continue
        # Funding has no side: it goes to the larger position of the symbol.
        largest = max(holders, key=lambda key: (venue.get(key) or before[key]).size)
        pnl[largest] += sum((payment.amount for payment in fresh), ZERO)
    # Symbols seen for the first time start their cursor just after this read began, so
    # the next sync counts only what happens from here on (a fill in the very
    # millisecond the read began is already in the positions read).
    start = {"ms": _ms(snapshot.fetched_at) + 1, "ids": []}
    for symbol in {key[0] for key in venue} | {key[0] for key in before}:
        cursors.setdefault(symbol, dict(start))
        cursors.setdefault(f"{symbol}:funding", dict(start))

    changed_symbols = set()
    for key, position in before.items():
        if key in venue:
            continue
        exit_price, exit_at = exits.get(key, (position.mark_price, snapshot.fetched_at))
        position.realized_pnl += pnl.get(key, ZERO)
        position.unrealized_pnl = ZERO
        position.exit_price = exit_price
        position.closed_at = min(exit_at, now)
        position.peak_pnl = max(position.peak_pnl, position.realized_pnl)
        position.save()
        ClosedTrade.objects.create(
            position=position,
            account=account,
            symbol=position.symbol,
            side=position.side,
            size=position.size,
            entry_price=position.entry_price,
            exit_price=exit_price,
            realized_pnl=position.realized_pnl,
            opened_at=position.opened_at,
            closed_at=position.closed_at,
        )
        result.closed.append(f"{position.symbol} {position.side}")
        changed_symbols.add(position.symbol)

    for key, info in venue.items():
        position = before.get(key)
        if position is None:
            mark = info.mark_price if info.mark_price is not None else info.entry_price
            position = Position(
                account=account,
                symbol=info.symbol,
                side=info.side,
                opened_at=min(first_fill.get(key, snapshot.fetched_at), now),
                mark_price=mark,
                mark_updated_at=snapshot.fetched_at,
                best_price=mark,
                realized_pnl=pnl.get(key, ZERO),
            )
            position.peak_pnl = position.realized_pnl + info.unrealized_pnl
            result.opened.append(f"{info.symbol} {info.side}")
        else:
            position.realized_pnl += pnl.get(key, ZERO)
            result.updated.append(f"{info.symbol} {info.side}")
        _apply_venue_position(position, info, snapshot.fetched_at)
        position.save()
        changed_symbols.add(info.symbol)

    _balance_update(account, snapshot.balance, now)
    account.fill_cursors = cursors
    account.last_synced_at = snapshot.fetched_at
    account.last_sync_attempt_at = now
    account.last_sync_failed = False
    account.last_sync_error = ""
    account.save(
        update_fields=[
            "fill_cursors",
            "last_synced_at",
            "last_sync_attempt_at",
            "last_sync_failed",
            "last_sync_error",
            "updated_at",
        ]
    )
    result.equity = snapshot.balance.equity
    positions_changed_on_commit(user_ids={account.user_id}, exchange=account.exchange, symbols=changed_symbols)
    return result


@transaction.atomic
def _record_failure(account: ExchangeAccount, message: str) -> None:
    ExchangeAccount.objects.filter(pk=account.pk).update(
        last_sync_attempt_at=timezone.now(), last_sync_failed=True, last_sync_error=message[:1000]
    )
    symbols = set(Position.objects.filter(account=account, closed_at__isnull=True).values_list("symbol", flat=True))
    # Its positions are stale now: let the risk engine know (it raises `data_stale`).
    positions_changed_on_commit(user_ids={account.user_id}, exchange=account.exchange, symbols=symbols)


def account_sync(*, account: ExchangeAccount) -> SyncResult:
    """Sync one account. Best called outside a transaction (one open around it stays
    open for the whole venue read). Raises the exchange layer's errors after recording
    the failure on the account."""
    # The caller's instance may be older than the row (cursors, last sync): re-read it.
    account.refresh_from_db()
    fetched_at = timezone.now()
    open_symbols = set(
        Position.objects.filter(account=account, closed_at__isnull=True).values_list("symbol", flat=True)
    )
    try:
        snapshot = async_to_sync(_read_venue)(account, open_symbols, fetched_at)
    except ExchangeError as error:
        _record_failure(account, str(error.detail))
        raise
    except Exception:
        _record_failure(account, "Internal error while reading the exchange.")
        raise
    result = _reconcile(account.pk, snapshot)
    account.refresh_from_db()
    return result


def portfolio_sync(*, exchange: str, user_id) -> dict:
    """`sync_portfolio`: the user's account on `exchange`. 404 without one."""
    account = ExchangeAccount.objects.filter(user_id=user_id, exchange=exchange).first()
    if account is None:
        raise NotFound(f"No {exchange} account for this user.")
    if not account.enabled:
        raise Conflict(f"The {exchange} account is disabled.")
    return account_sync(account=account).as_dict()


def portfolios_sync_all(*, exchanges: list[str] | None = None) -> dict:
    """`sync_all_portfolios`: every enabled account (of `exchanges`, if given). One
    account's failure does not stop the others; when every account failed the error
    is raised, so the job retries. Records the outcome on the monitoring state."""
    accounts = ExchangeAccount.objects.filter(enabled=True).order_by("id")
    if exchanges:
        accounts = accounts.filter(exchange__in=exchanges)
    synced, failed = [], []
    last_error: ExchangeError | None = None
    for account in accounts:
        try:
            synced.append(account_sync(account=account).as_dict())
        except ExchangeError as error:
            last_error = error
            failed.append(
                {
                    "account_id": account.pk,
                    "exchange": account.exchange,
                    "user_id": str(account.user_id),
                    "error": str(error.detail),
                }
            )
            logger.warning("sync of %s failed: %s", account, error.detail)
    now = timezone.now()
    error_text = "; ".join(f"{item['exchange']} account {item['account_id']}: {item['error']}" for item in failed)
    MonitoringState.objects.get_or_create(pk=1)
    update = {"last_sync_at": now, "last_error": error_text[:2000]}
    if failed:
        update["last_error_at"] = now
    MonitoringState.objects.filter(pk=1).update(**update)
    if failed and not synced:
        raise last_error
    return {"accounts": len(synced) + len(failed), "synced": synced, "failed": failed}
