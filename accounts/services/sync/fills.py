"""Fills and funding since the last sync, walked in order per symbol.

The walk starts from the positions ETRMS held (size and entry as last synced) and
replays each fill on its side: a fill goes to the side it names (hedge mode) or, in
one-way mode, to the position it reduces, else to the one it opens; a one-way flip's
whole fill belongs to the closed side (the venue reports its realized PnL there) and
the rest opens the other side. Each (symbol, side) gets the *segments* of position
life the fills show: the held position's continuation, and every position opened
since (a close and reopen on one side between two syncs is two segments). Each
segment carries its realized PnL (the venue's figure, else computed from the entry),
minus fees, plus funding (which goes to the larger side of its symbol).

The same walk gives the day's realized PnL (by the UTC date of each fill) and what
fills, fees and funding explain of the wallet's change (the rest is a transfer).
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from accounts.exchanges import BUY, LONG, SHORT, FundingPayment, PositionInfo, Trade
from accounts.models import Position
from accounts.services.sync.reading import new_items

ZERO = Decimal(0)
Key = tuple[str, str]  # (symbol, side)


@dataclass
class Segment:
    """One position's life inside this sync's fills. `opened_at` None: the position
    ETRMS already held (or one whose opening fill is older than the fills read)."""

    opened_at: datetime | None = None
    size: Decimal = ZERO
    entry: Decimal = ZERO
    pnl: Decimal = ZERO  # realized - fees + funding
    closed: bool = False
    exit_price: Decimal | None = None
    exit_at: datetime | None = None
    peak_entry_notional: Decimal = ZERO  # max |size x entry| reached inside the fills


@dataclass
class FillsOutcome:
    segments: dict[Key, list[Segment]] = field(default_factory=dict)
    day_pnl: dict[date, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    explained: Decimal = ZERO  # everything the fills and funding put into the wallet
    cursors: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _open_segment(segments: list[Segment], at: datetime) -> Segment:
    if not segments or segments[-1].closed:
        segments.append(Segment(opened_at=at))
    return segments[-1]


def _apply(outcome: FillsOutcome, trade: Trade) -> None:
    symbol = trade.symbol
    if trade.position_side in (LONG, SHORT):
        side, one_way = trade.position_side, False
    else:
        reduces = SHORT if trade.side == BUY else LONG
        held = outcome.segments.get((symbol, reduces))
        side = reduces if held and not held[-1].closed and held[-1].size > 0 else (LONG if trade.side == BUY else SHORT)
        one_way = True
    segments = outcome.segments.setdefault((symbol, side), [])
    direction = 1 if side == LONG else -1
    reducing = (side == LONG) == (trade.side != BUY)
    if reducing:
        segment = _open_segment(segments, trade.timestamp)
        realized = trade.realized_pnl
        if realized is None:  # computed from the entry where the venue gives no figure
            closed = min(trade.amount, segment.size)
            realized = (trade.price - segment.entry) * closed * direction if segment.entry else ZERO
        segment.pnl += realized - trade.fee
        segment.exit_price, segment.exit_at = trade.price, trade.timestamp
        had = segment.size
        segment.size -= trade.amount
        if had > 0 and segment.size <= 0:
            segment.closed = True
            rest = -segment.size
            segment.size = ZERO
            if one_way and rest > 0:  # a flip: the rest opens the other side
                other = outcome.segments.setdefault((symbol, LONG if side == SHORT else SHORT), [])
                opened = _open_segment(other, trade.timestamp)
                opened.size, opened.entry = rest, trade.price
                opened.peak_entry_notional = max(opened.peak_entry_notional, rest * trade.price)
    else:
        realized = trade.realized_pnl or ZERO
        segment = _open_segment(segments, trade.timestamp)
        total = segment.size + trade.amount
        segment.entry = (segment.entry * segment.size + trade.price * trade.amount) / total
        segment.size = total
        segment.pnl -= trade.fee
        segment.peak_entry_notional = max(segment.peak_entry_notional, abs(total * segment.entry))
        segment.pnl += realized
    amount = realized - trade.fee
    outcome.day_pnl[trade.timestamp.date()] += amount
    outcome.explained += amount
    if trade.fee_unconverted:
        outcome.notes.append(f"{symbol}: fee of {trade.fee_unconverted} has no USD price and was left out.")


def fills_walk(
    *,
    before: dict[Key, Position],
    venue: dict[Key, PositionInfo],
    fills: dict[str, list[Trade]],
    funding: dict[str, list[FundingPayment]],
    cursors: dict,
) -> FillsOutcome:
    """Replay the fresh fills and funding (those past `cursors`) on the held positions.
    `outcome.cursors` is `cursors` advanced past them."""
    outcome = FillsOutcome(cursors=dict(cursors))
    for key, position in before.items():
        outcome.segments[key] = [
            Segment(size=position.size, entry=position.entry_price, peak_entry_notional=position.peak_entry_notional)
        ]
    for symbol, trades in fills.items():
        fresh, outcome.cursors[symbol] = new_items(trades, outcome.cursors.get(symbol))
        for trade in fresh:
            _apply(outcome, trade)
    for symbol, payments in funding.items():
        fresh, outcome.cursors[f"{symbol}:funding"] = new_items(payments, outcome.cursors.get(f"{symbol}:funding"))
        holders = [key for key in {**before, **venue} if key[0] == symbol]
        if not holders or not fresh:
            continue
        # Funding has no side: it goes to the larger position of the symbol.
        largest = max(holders, key=lambda key: (venue.get(key) or before[key]).size)
        segments = outcome.segments.setdefault(largest, [])
        if not segments:
            segments.append(Segment())
        for payment in fresh:
            segments[-1].pnl += payment.amount
            outcome.day_pnl[payment.timestamp.date()] += payment.amount
            outcome.explained += payment.amount
    return outcome


def walk_agrees(segments: list[Segment], venue_size: Decimal) -> bool:
    """Whether the walk ends at the size the venue reports (then its segments are
    trusted: a close and reopen inside them is real, not an artefact of a position read
    that missed a fill)."""
    final = ZERO if not segments or segments[-1].closed else segments[-1].size
    return abs(final - venue_size) <= max(Decimal("1e-9"), venue_size * Decimal("1e-9"))


def collapse(segments: list[Segment], *, closed: bool) -> list[Segment]:
    """One segment for the held position with every segment's PnL (the behaviour when
    the fills do not agree with the venue's size)."""
    if not segments:
        return []
    exits = [segment for segment in segments if segment.exit_price is not None]
    return [
        Segment(
            opened_at=segments[0].opened_at,
            pnl=sum((segment.pnl for segment in segments), ZERO),
            closed=closed,
            exit_price=exits[-1].exit_price if exits else None,
            exit_at=exits[-1].exit_at if exits else None,
        )
    ]
