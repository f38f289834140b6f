"""Mark updates between syncs: the feed moves open positions' marks tick by tick."""

from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from accounts.events import positions_changed_on_commit
from accounts.exchanges import LONG, normalize_symbol
from accounts.models import Position

_MARK_FIELDS = ["mark_price", "mark_updated_at", "unrealized_pnl", "notional", "best_price", "peak_pnl"]
# What moving a mark reads: the feed persists a thousand positions a second, and building
# every column of them and their accounts (eight datetimes a row) was most of that cost.
_READ_FIELDS = ["symbol", "side", "size", "entry_price", "realized_pnl", "account__user", *_MARK_FIELDS]


def position_mark_apply(position: Position, *, price: Decimal, at: datetime) -> bool:
    """Move `position` (in memory) to mark `price` observed at `at`; False when the
    position already carries a newer mark. Keeps unrealized PnL, notional, best price
    and peak PnL since opening consistent with the mark."""
    if position.mark_updated_at and position.mark_updated_at > at:
        return False
    position.mark_price = price
    position.mark_updated_at = at
    position.unrealized_pnl = (price - position.entry_price) * position.size * position.direction
    position.notional = abs(position.size * price)
    if position.side == LONG:
        position.best_price = max(position.best_price or price, price)
    else:
        position.best_price = min(position.best_price or price, price)
    position.peak_pnl = max(position.peak_pnl, position.realized_pnl + position.unrealized_pnl)
    return True


@transaction.atomic
def positions_marks_update(
    *, exchange: str, prices: dict[str, Decimal], at: datetime | None = None, announce: bool = True
) -> list[Position]:
    """Apply the feed's marks (`{symbol: price}`, quote currency) to every open position
    on `exchange` in those symbols, for all users: one SELECT and one bulk UPDATE.
    Returns the positions moved; the risk engine hears of them after commit, unless
    `announce` is off (the feed persisting marks its in-memory index already holds)."""
    at = at or timezone.now()
    prices = {normalize_symbol(symbol): Decimal(price) for symbol, price in prices.items()}
    if not prices:
        return []
    positions = list(
        Position.objects.select_for_update(of=("self",))
        .select_related("account")
        .only(*_READ_FIELDS)
        .filter(account__exchange=exchange, symbol__in=list(prices), closed_at__isnull=True)
    )
    moved = [position for position in positions if position_mark_apply(position, price=prices[position.symbol], at=at)]
    if moved:
        marks_write(moved)
    if moved and announce:
        positions_changed_on_commit(
            user_ids={position.account.user_id for position in moved},
            exchange=exchange,
            symbols={position.symbol for position in moved},
        )
    return moved


def marks_write(positions: list) -> None:
    """Persist the marks `positions` carry (Position rows or the risk index's
    PositionViews, anything with `_MARK_FIELDS` and `id`): one UPDATE a row, sent as
    one executemany (`bulk_update`'s CASE per field cost the feed seconds of Python a
    second for a thousand positions, bench/feed.py). A row is left alone when it closed
    or carries a newer mark meanwhile (a sync wrote it): a mark never goes back.
    Decimals go as they are (both backends adapt them; the column rounds), datetimes
    through the field (SQLite stores naive UTC text)."""
    quote = connection.ops.quote_name  # the values below follow _MARK_FIELDS' order

    def column(name: str) -> str:
        return quote(Position._meta.get_field(name).column)

    assignments = ", ".join(f"{column(name)} = %s" for name in _MARK_FIELDS)
    moment_column = column("mark_updated_at")
    where = (
        f"{column('id')} = %s AND {column('closed_at')} IS NULL AND ({moment_column} IS NULL OR {moment_column} <= %s)"
    )
    # Names from the model, quoted by the backend; every value is a parameter.
    sql = f"UPDATE {quote(Position._meta.db_table)} SET {assignments} WHERE {where}"  # noqa: S608
    moment = Position._meta.get_field("mark_updated_at")
    prepared = {}  # a batch moves many positions at one moment: its text is made once
    rows = []
    for position in positions:
        at = prepared.get(position.mark_updated_at)
        if at is None:
            at = prepared[position.mark_updated_at] = moment.get_db_prep_save(position.mark_updated_at, connection)
        rows.append(
            [
                position.mark_price,
                at,
                position.unrealized_pnl,
                position.notional,
                position.best_price,
                position.peak_pnl,
                position.id,
                at,
            ]
        )
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
