"""The books the risk engine reads, as plain in-memory views (`PositionView`,
`AccountView`) loaded with decimals and times as database text, and the desk-wide
aggregates its caps need.

Units: money in quote currency (USD stablecoins 1:1), Decimal end to end.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from django.db.models import Case, CharField, F, OuterRef, Subquery, Sum, Value, When, Window
from django.db.models.functions import Abs, Cast, Coalesce, RowNumber

from accounts.models import AccountDay, Balance, ClosedTrade, ExchangeAccount, Position
from etrms.text_rows import text_datetime

ZERO = Decimal(0)


@dataclass(slots=True)
class PositionView:
    id: int
    user_id: object
    account_id: int
    exchange: str
    symbol: str
    side: str
    hedged: bool
    size: Decimal
    entry_price: Decimal
    mark_price: Decimal
    mark_updated_at: datetime
    notional: Decimal
    unrealized_pnl: Decimal
    realized_pnl: Decimal
    leverage: Decimal | None
    peak_pnl: Decimal
    best_price: Decimal
    opened_at: datetime
    peak_entry_notional: Decimal  # max |size x entry| since opening (max_drawdown's denominator)

    @property
    def direction(self) -> int:
        return 1 if self.side == "long" else -1

    @property
    def signed_notional(self) -> Decimal:
        return self.notional if self.side == "long" else -self.notional


@dataclass(slots=True)
class AccountView:
    id: int
    user_id: object
    exchange: str
    last_sync_failed: bool
    has_balance: bool
    balance: Decimal = ZERO
    maintenance_margin: Decimal | None = None
    peak_equity: Decimal = ZERO  # moved by transfers: a withdrawal is never drawdown
    net_transfers: Decimal = ZERO  # net deposits since the first sync (deposits positive)
    # The UTC day (SPEC §4 daily_loss): realized PnL since 00:00 from fills, fees and
    # funding (transfers never count), and the unrealized PnL at 00:00; before the day's
    # first sync, nothing realized yet and the last synced unrealized PnL.
    day_realized: Decimal = ZERO
    day_start_unrealized: Decimal = ZERO

    def daily_pnl(self, unrealized_now: Decimal) -> Decimal:
        return self.day_realized + unrealized_now - self.day_start_unrealized


# Decimals and datetimes come back as text and are parsed here: on PostgreSQL the
# driver's timestamptz loader, on SQLite Django's float-to-Decimal converter, cost more
# than the rest of an evaluation of 10,000 positions (bench/evaluate.py).
POSITION_DECIMALS = (
    "size",
    "entry_price",
    "mark_price",
    "notional",
    "unrealized_pnl",
    "realized_pnl",
    "leverage",
    "peak_pnl",
    "best_price",
    "peak_entry_notional",
)
POSITION_DATETIMES = ("mark_updated_at", "opened_at")


def position_view(
    position_id, account: AccountView, symbol, side, hedged, decimals, mark_updated_at, opened_at
) -> PositionView:
    """A PositionView from its columns as database text: `decimals` in POSITION_DECIMALS'
    order, the two times as text (the hot loop of a 10,000-position book: positional)."""
    size, entry, mark, notional, upnl, realized, leverage, peak, best, peak_entry = decimals
    return PositionView(
        position_id,
        account.user_id,
        account.id,
        account.exchange,
        symbol,
        side,
        hedged,
        Decimal(size),
        Decimal(entry),
        Decimal(mark),
        text_datetime(mark_updated_at),
        Decimal(notional),
        Decimal(upnl),
        Decimal(realized),
        None if leverage is None else Decimal(leverage),
        Decimal(peak),
        Decimal(best),
        text_datetime(opened_at),
        Decimal(peak_entry),
    )


def positions_load(*, accounts: dict, **filters) -> list[PositionView]:
    """Open positions of `accounts` ({id: AccountView}), one query."""
    if not accounts:
        return []
    text = {f"t_{name}": Cast(name, output_field=CharField()) for name in POSITION_DECIMALS + POSITION_DATETIMES}
    rows = (
        Position.objects.filter(closed_at__isnull=True, account_id__in=list(accounts), **filters)
        .annotate(**text)
        .values_list("id", "account_id", "symbol", "side", "hedged", *text)
    )
    views = []
    append = views.append
    for row in rows:
        append(position_view(row[0], accounts[row[1]], row[2], row[3], row[4], row[5:15], row[15], row[16]))
    return views


ACCOUNT_VALUES = (
    "id",
    "user_id",
    "exchange",
    "last_sync_failed",
    "balance__id",
    "balance__balance",
    "balance__unrealized_pnl",
    "balance__maintenance_margin",
    "balance__peak_equity",
    "balance__net_transfers",
)


def _today() -> date:
    return datetime.now(UTC).date()


def accounts_load(**filters) -> dict[int, AccountView]:
    """Accounts with their balance snapshot and the start of today's UTC day (2 queries)."""
    accounts: dict[int, AccountView] = {}
    for row in ExchangeAccount.objects.filter(**filters).values_list(*ACCOUNT_VALUES):
        (account_id, user_id, exchange, failed, balance_id, balance, unrealized, maintenance, peak, transfers) = row
        has_balance = balance_id is not None
        accounts[account_id] = AccountView(
            id=account_id,
            user_id=user_id,
            exchange=exchange,
            last_sync_failed=failed,
            has_balance=has_balance,
            balance=balance if has_balance else ZERO,
            maintenance_margin=maintenance,
            peak_equity=peak if has_balance else ZERO,
            net_transfers=transfers if has_balance else ZERO,
            day_start_unrealized=unrealized if has_balance else ZERO,
        )
    if accounts:
        days = AccountDay.objects.filter(account_id__in=list(accounts), date=_today()).values_list(
            "account_id", "realized_pnl", "start_unrealized"
        )
        for account_id, realized, start_unrealized in days:
            account = accounts[account_id]
            if account.has_balance:
                account.day_realized, account.day_start_unrealized = realized, start_unrealized
    return accounts


def desk_gross_exposure() -> Decimal:
    """Sum of |notional| over every open position (one aggregate query)."""
    return Position.objects.filter(closed_at__isnull=True).aggregate(gross=Sum(Abs("notional")))["gross"] or ZERO


def desk_symbol_net(*, symbols: list) -> dict:
    """{symbol: signed net notional over every user's open positions} (longs positive)."""
    signed = Case(When(side="long", then=F("notional")), default=-F("notional"))
    return dict(
        Position.objects.filter(closed_at__isnull=True, symbol__in=symbols)
        .values("symbol")
        .annotate(net=Sum(signed))
        .values_list("symbol", "net")
    )


def desk_exchange_exposure(*, exchanges: list) -> dict:
    """{exchange: sum |notional| over every user's open positions there}."""
    return dict(
        Position.objects.filter(closed_at__isnull=True, account__exchange__in=exchanges)
        .values("account__exchange")
        .annotate(gross=Sum(Abs("notional")))
        .values_list("account__exchange", "gross")
    )


def desk_equity_daily_pnl() -> tuple[Decimal, Decimal, int]:
    """(equity, daily PnL, accounts with a balance) over every account with a balance
    snapshot: equity is the balance plus the open positions' unrealized PnL now; the
    day's PnL as `AccountView.daily_pnl` counts it. One query."""
    today = AccountDay.objects.filter(account_id=OuterRef("account_id"), date=_today())
    unrealized_now = (
        Position.objects.filter(account_id=OuterRef("account_id"), closed_at__isnull=True)
        .values("account_id")
        .annotate(total=Sum("unrealized_pnl"))
        .values("total")
    )
    totals = Balance.objects.annotate(
        upnl=Coalesce(Subquery(unrealized_now), Value(ZERO)),
        day_realized=Coalesce(Subquery(today.values("realized_pnl")[:1]), Value(ZERO)),
        start_unrealized=Coalesce(Subquery(today.values("start_unrealized")[:1]), F("unrealized_pnl")),
    ).values_list("balance", "upnl", "day_realized", "start_unrealized")
    equity, daily_pnl, balances = ZERO, ZERO, 0
    for balance, upnl, day_realized, start_unrealized in totals:
        equity += balance + upnl
        daily_pnl += day_realized + upnl - start_unrealized
        balances += 1
    return equity, daily_pnl, balances


NO_TRADES = ()  # a pair's closed trades when it has none (one shared, immutable empty)


def closed_trades_recent(*, pairs: set, depth: int) -> dict:
    """{(account_id, symbol): [(closed_at, realized_pnl), ...] newest first, at most
    `depth` each} for every pair in `pairs` (`NO_TRADES` for those with none): one
    windowed query."""
    rows = (
        ClosedTrade.objects.filter(account_id__in={account for account, _ in pairs})
        .annotate(rank=Window(RowNumber(), partition_by=[F("account_id"), F("symbol")], order_by=closed_trades_order()))
        .filter(rank__lte=depth)
        .order_by("account_id", "symbol", *closed_trades_order())
        .values_list("account_id", "symbol", "closed_at", "realized_pnl")
    )
    found: dict = {}
    for account_id, symbol, closed_at, pnl in rows:
        if (account_id, symbol) in pairs:
            found.setdefault((account_id, symbol), []).append((closed_at, pnl))
    return {pair: found.get(pair, NO_TRADES) for pair in pairs}


def closed_trades_order() -> list:
    """Closed trades newest first; two closes at one instant (a trader's close and a
    breaker's in one sync) by their rows' order, the later row first. Without the second
    key the tie is the database's to break, differently from one query plan to another."""
    return [F("closed_at").desc(), F("id").desc()]
