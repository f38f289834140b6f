"""The reconcile transaction of a sync: positions opened, updated and closed, the money
side (`ledger`), the fill cursors, all under the account's row lock.

- a position the venue lists and ETRMS does not is opened; one ETRMS holds open and the
  venue no longer lists is closed, with a `ClosedTrade` carrying its net result; a flip
  to the other side is a close plus an open (tracking restarts);
- when the fills show a position closing and a new one opening on the same side since
  the last sync (and the walk ends at the size the venue reports), the old row is
  closed with its `ClosedTrade` and a new row starts (fresh opened_at, best price, peak);
  a position opened and closed entirely inside the fills gets its row and ClosedTrade;
- positions of a market quoted in anything but USDT, USDC or USD are not synced (SPEC
  §3: never summed 1:1): the sync records a clear error on the account instead.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.events import positions_changed_on_commit
from accounts.exchanges import LONG, PositionInfo
from accounts.exchanges.symbols import USD_QUOTES
from accounts.models import ClosedTrade, ExchangeAccount, Position
from accounts.services.sync.fills import Segment, collapse, fills_walk, walk_agrees
from accounts.services.sync.ledger import balance_update, day_update
from accounts.services.sync.reading import VenueSnapshot, ms
from etrms.formatting import iso_utc

logger = logging.getLogger("accounts.sync")
ZERO = Decimal(0)


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
    transfer: Decimal = ZERO
    synced_at: datetime | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def positions_updated(self) -> int:
        return len(self.opened) + len(self.updated) + len(self.closed)

    def as_dict(self) -> dict:
        """Phase 4's job result fields (synced, positions_updated, balances_updated,
        synced_at, user_id) and ETRMS's detail."""
        return {
            "synced": not self.skipped,
            "positions_updated": self.positions_updated,
            "balances_updated": 0 if self.skipped else 1,
            "synced_at": iso_utc(self.synced_at),
            "user_id": self.user_id,
            "account_id": self.account_id,
            "exchange": self.exchange,
            "skipped": self.skipped,
            "opened": self.opened,
            "updated": self.updated,
            "closed": self.closed,
            "equity": str(self.equity),
            "transfer": str(self.transfer),
            "errors": self.errors,
        }


def _track(position: Position, mark: Decimal) -> None:
    """Best mark and peak PnL since opening, after the mark or PnL moved."""
    if position.side == LONG:
        position.best_price = max(position.best_price or mark, mark)
    else:
        position.best_price = min(position.best_price or mark, mark)
    position.peak_pnl = max(position.peak_pnl, position.realized_pnl + position.unrealized_pnl)


def _apply_venue_position(position: Position, venue: PositionInfo, snapshot: VenueSnapshot) -> None:
    position.size = venue.size
    position.entry_price = venue.entry_price
    position.hedged = venue.hedged
    position.leverage = venue.leverage
    position.liquidation_price = venue.liquidation_price
    position.margin_ratio = venue.margin_ratio
    position.maintenance_margin = venue.maintenance_margin
    position.peak_entry_notional = max(position.peak_entry_notional, abs(venue.size * venue.entry_price))
    fresh = snapshot.marks.get(venue.symbol)
    if fresh is not None:
        mark, stamped = fresh.price, fresh.received_at
    else:
        mark = venue.mark_price if venue.mark_price is not None else (position.mark_price or venue.entry_price)
        stamped = snapshot.positions_received_at
    if position.pk and position.mark_updated_at and position.mark_updated_at > stamped:
        mark = position.mark_price  # the feed moved the mark after this read: keep it
    else:
        position.mark_price, position.mark_updated_at = mark, stamped
    if fresh is None and mark == venue.mark_price:
        position.unrealized_pnl = venue.unrealized_pnl
    else:
        position.unrealized_pnl = (mark - venue.entry_price) * venue.size * position.direction
    position.notional = abs(venue.size * mark)
    _track(position, mark)


def _close(position: Position, segment: Segment, snapshot: VenueSnapshot, now: datetime) -> None:
    exit_price, exit_at = position.mark_price, snapshot.fetched_at
    if segment.exit_price is not None:
        exit_price, exit_at = segment.exit_price, segment.exit_at
    position.realized_pnl += segment.pnl
    position.unrealized_pnl = ZERO
    position.exit_price = exit_price
    position.closed_at = min(exit_at, now)
    position.peak_pnl = max(position.peak_pnl, position.realized_pnl)
    position.save()
    ClosedTrade.objects.create(
        position=position,
        account=position.account,
        symbol=position.symbol,
        side=position.side,
        size=position.size,
        entry_price=position.entry_price,
        exit_price=exit_price,
        realized_pnl=position.realized_pnl,
        opened_at=position.opened_at,
        closed_at=position.closed_at,
    )


def _new_position(account, key, segment: Segment | None, info: PositionInfo | None, snapshot, now) -> Position:
    opened_at = (segment.opened_at if segment else None) or (info.opened_at if info else None) or snapshot.fetched_at
    mark = segment.entry if info is None else (info.mark_price if info.mark_price is not None else info.entry_price)
    position = Position(
        account=account,
        symbol=key[0],
        side=key[1],
        opened_at=min(opened_at, now),
        mark_price=mark,
        mark_updated_at=snapshot.positions_received_at,
        best_price=mark,
        realized_pnl=segment.pnl if segment else ZERO,
        size=segment.size if segment else ZERO,
        entry_price=segment.entry if segment else ZERO,
        peak_entry_notional=segment.peak_entry_notional if segment else ZERO,
    )
    position.peak_pnl = position.realized_pnl + (info.unrealized_pnl if info else ZERO)
    return position


def _reconcile_key(account, key, held, info, segments, snapshot, now, result) -> None:
    """Bring one (symbol, side) up to date from its segments (see the module doc)."""
    label = f"{key[0]} {key[1]}"
    if segments and not walk_agrees(segments, info.size if info else ZERO):
        segments = collapse(segments, closed=info is None)
    if held is not None and segments and segments[0].opened_at is not None:
        segments = [Segment(), *segments]  # the held position's fills are older than the window
    if held is None and segments and segments[0].opened_at is None:
        segments[0].opened_at = (info.opened_at if info else None) or snapshot.fetched_at
    if held is not None and not segments:
        segments = [Segment(closed=info is None)]
    if not segments:
        segments = [Segment(opened_at=(info.opened_at or snapshot.fetched_at) if info else None)]
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if index == 0 and held is not None:
            position = held
        else:
            position = _new_position(account, key, segment, info if last else None, snapshot, now)
            if not last or info is not None:
                result.opened.append(label)
        if last and info is not None:
            if index == 0 and held is not None:
                position.realized_pnl += segment.pnl
                result.updated.append(label)
            _apply_venue_position(position, info, snapshot)
            position.peak_entry_notional = max(position.peak_entry_notional, segment.peak_entry_notional)
            position.save()
        else:
            if position.pk is None:
                position.realized_pnl = ZERO
                position.save()
            _close(position, segment, snapshot, now)
            result.closed.append(label)


@transaction.atomic
def reconcile(account_id: int, snapshot: VenueSnapshot) -> SyncResult:
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
    venue = {}
    for info in snapshot.positions:
        if info.quote.upper() not in USD_QUOTES:
            result.errors.append(
                f"{info.symbol} {info.side} is quoted in {info.quote}: not synced (ETRMS sums only USDT, USDC and "
                "USD 1:1; its risk is not tracked)."
            )
            continue
        venue[(info.symbol, info.side)] = info
    walk = fills_walk(
        before=before, venue=venue, fills=snapshot.fills, funding=snapshot.funding, cursors=account.fill_cursors
    )
    result.errors.extend(walk.notes)
    cursors = walk.cursors
    # Symbols seen for the first time start their cursor just after this read began, so
    # the next sync counts only what happens from here on.
    start = {"ms": ms(snapshot.fetched_at) + 1, "ids": []}
    for symbol in {key[0] for key in venue} | {key[0] for key in before}:
        cursors.setdefault(symbol, dict(start))
        cursors.setdefault(f"{symbol}:funding", dict(start))

    changed_symbols = set()
    keys = sorted(set(before) | set(venue) | {key for key, segments in walk.segments.items() if segments})
    for key in keys:
        held, info, segments = before.get(key), venue.get(key), walk.segments.get(key, [])
        if held is None and info is None and not any(segment.closed for segment in segments):
            continue  # fills of a position never seen and not closed: nothing to record
        _reconcile_key(account, key, held, info, segments, snapshot, now, result)
        changed_symbols.add(key[0])

    result.transfer = balance_update(account=account, info=snapshot.balance, explained=walk.explained, now=now)
    day_update(account=account, info=snapshot.balance, day_pnl=walk.day_pnl, transfer=result.transfer, now=now)
    account.fill_cursors = cursors
    account.last_synced_at = snapshot.fetched_at
    account.last_sync_attempt_at = now
    account.last_sync_failed = False
    account.last_sync_error = " ".join(result.errors)[:1000]
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
    for error in result.errors:
        logger.warning("sync of %s: %s", account, error)
    result.equity = snapshot.balance.equity
    result.synced_at = now
    positions_changed_on_commit(user_ids={account.user_id}, exchange=account.exchange, symbols=changed_symbols)
    return result
