# ruff: noqa: S608 -- SQL text here is the ORM's own or names tables from the models; values are parameters.
"""The accounts' parts of `POST /risk/evaluate`'s two queries (risk.services.request_loads):
one user's book and the desk's sums as members of one UNION ALL (`etrms.text_rows`),
and the closed trades a loss streak reads as a member of the risk state's; with the
parsers of their rows into the views `accounts.selectors.books` loads otherwise.

Members take the stand-in values `etrms.text_rows.compiled_rows` passes ("user", "day"),
so their SQL is compiled once per shape. Row kinds: "A" an account (with its balance,
the day's row and, when asked, the desk's sums), "P" an open position, "S" a capped
symbol's desk net, "E" a capped exchange's desk exposure, "C" a closed trade, "O" an
open paper order (the pre-trade check's resting orders on paper).
"""

from dataclasses import dataclass, field
from decimal import Decimal
from operator import itemgetter

from django.db.models import Case, CharField, F, FilteredRelation, Q, Sum, When, Window
from django.db.models.expressions import RawSQL
from django.db.models.functions import Abs, RowNumber

from accounts.exchanges.base import OpenOrder
from accounts.exchanges.symbols import normalize_symbol
from accounts.models import AccountDay, Balance, ClosedTrade, ExchangeAccount, PaperOrder, Position
from accounts.selectors.books import (
    POSITION_DATETIMES,
    POSITION_DECIMALS,
    ZERO,
    AccountView,
    closed_trades_order,
    position_view,
)
from etrms.text_rows import member, text_bool, text_datetime, text_decimal

ACCOUNT_COLUMNS = (
    "id",
    "exchange",
    "last_sync_failed",
    "balance__id",
    "balance__balance",
    "balance__unrealized_pnl",
    "balance__maintenance_margin",
    "balance__peak_equity",
    "balance__net_transfers",
    "today__realized_pnl",
    "today__start_unrealized",
)
DESK_SUMS = 6  # the columns `_desk_sums` adds to each account row


def _desk_sums(today) -> list:
    """Desk-wide sums as scalar subqueries (the same on every account row): gross open
    exposure, and over the accounts with a balance: balances, open unrealized PnL,
    today's realized PnL, and the unrealized PnL at 00:00 UTC (the last synced one
    before the day's first sync), and their count."""
    position, balance, day = Position._meta.db_table, Balance._meta.db_table, AccountDay._meta.db_table
    # Table names from the models, values as parameters: nothing from a request is in the text.
    sums = [
        (f"SELECT SUM(ABS(p.notional)) FROM {position} p WHERE p.closed_at IS NULL", []),
        (f"SELECT SUM(b.balance) FROM {balance} b", []),
        (
            f"SELECT SUM(p.unrealized_pnl) FROM {position} p JOIN {balance} b ON b.account_id = p.account_id"
            " WHERE p.closed_at IS NULL",
            [],
        ),
        (
            f"SELECT SUM(d.realized_pnl) FROM {day} d JOIN {balance} b ON b.account_id = d.account_id"
            " WHERE d.date = %s",
            [today],
        ),
        (
            f"SELECT SUM(COALESCE(d.start_unrealized, b.unrealized_pnl)) FROM {balance} b"
            f" LEFT JOIN {day} d ON d.account_id = b.account_id AND d.date = %s",
            [today],
        ),
        (f"SELECT COUNT(*) FROM {balance} b", []),
    ]
    assert len(sums) == DESK_SUMS
    return [RawSQL(sql, params, output_field=CharField()) for sql, params in sums]  # noqa: S611


def book_members(
    stand_in: dict, *, width: int, desk_sums: bool, capped_symbols: tuple, capped_exchanges: tuple
) -> list:
    """The user's accounts (balance, the day's row, with `desk_sums` the desk's sums),
    open positions, and the desk's nets of `capped_symbols` and exposure on
    `capped_exchanges`, as UNION members `width` wide."""
    user_id, today = stand_in["user"], stand_in["day"]
    accounts = ExchangeAccount.objects.filter(user_id=user_id).annotate(
        today=FilteredRelation("days", condition=Q(days__date=today))
    )
    account_columns = [*ACCOUNT_COLUMNS, *(_desk_sums(today) if desk_sums else ())]
    open_positions = Position.objects.filter(closed_at__isnull=True, account__user_id=user_id)
    position_columns = ["id", "account_id", "symbol", "side", "hedged", *POSITION_DECIMALS, *POSITION_DATETIMES]
    members = [member(accounts, "A", account_columns, width), member(open_positions, "P", position_columns, width)]
    desk_open = Position.objects.filter(closed_at__isnull=True)
    if capped_symbols:
        signed = Case(When(side="long", then=F("notional")), default=-F("notional"))
        nets = desk_open.filter(symbol__in=capped_symbols).values("symbol").annotate(net=Sum(signed))
        members.append(member(nets, "S", ["symbol", "net"], width))
    if capped_exchanges:
        gross = (
            desk_open.filter(account__exchange__in=capped_exchanges)
            .values("account__exchange")
            .annotate(gross=Sum(Abs("notional")))
        )
        members.append(member(gross, "E", ["account__exchange", "gross"], width))
    return members


@dataclass
class BookRows:
    """What `book_members`' rows hold, as `books.accounts_load` / `positions_load` and the
    desk aggregates return it (ordered as the models' Meta.ordering)."""

    accounts: dict = field(default_factory=dict)  # {account_id: AccountView}
    positions: list = field(default_factory=list)  # [PositionView]
    desk: dict | None = None  # total_exposure, equity, daily_pnl, balances, symbol_net, exchange_exposure


def book_rows_parse(rows: list, *, owner, desk_sums: bool) -> BookRows:
    accounts: dict = {}
    position_rows = []
    desk = {"symbol_net": {}, "exchange_exposure": {}} if desk_sums else None
    sums_at = 1 + len(ACCOUNT_COLUMNS)
    for row in rows:
        kind = row[0]
        if kind == "P":
            position_rows.append(row)
        elif kind == "A":
            accounts[int(row[1])] = _account(row, owner)
            if desk is not None:
                sums = (text_decimal(value) or ZERO for value in row[sums_at : sums_at + DESK_SUMS])
                gross, balances, unrealized, realized, start, count = sums
                desk.update(
                    total_exposure=gross,
                    equity=balances + unrealized,
                    daily_pnl=realized + unrealized - start,
                    balances=int(count),
                )
        elif kind == "S":
            desk["symbol_net"][row[1]] = Decimal(row[2])
        elif kind == "E":
            desk["exchange_exposure"][row[1]] = Decimal(row[2])
    accounts = dict(sorted(accounts.items(), key=lambda item: (item[1].exchange, item[0])))
    return BookRows(accounts=accounts, positions=_positions(position_rows, accounts), desk=desk)


def _account(row, owner) -> AccountView:
    """An "A" row: kind, then ACCOUNT_COLUMNS (as text)."""
    has_balance = row[4] is not None
    account = AccountView(
        id=int(row[1]),
        user_id=owner,
        exchange=row[2],
        last_sync_failed=text_bool(row[3]),
        has_balance=has_balance,
        balance=Decimal(row[5]) if has_balance else ZERO,
        maintenance_margin=text_decimal(row[7]),
        peak_equity=Decimal(row[8]) if has_balance else ZERO,
        net_transfers=Decimal(row[9]) if has_balance else ZERO,
        day_start_unrealized=Decimal(row[6]) if has_balance else ZERO,
    )
    if has_balance and row[10] is not None:  # the day's row
        account.day_realized, account.day_start_unrealized = Decimal(row[10]), Decimal(row[11])
    return account


def _positions(rows: list, accounts: dict) -> list:
    """ "P" rows (kind, id, account, symbol, side, hedged, POSITION_DECIMALS,
    POSITION_DATETIMES, as text) as PositionViews by symbol and side, ties in the rows'
    order (the rows sorted by their texts, before the views are built: the same order)."""
    by_text = {str(account_id): account for account_id, account in accounts.items()}
    rows.sort(key=itemgetter(3, 4))
    return [
        position_view(int(row[1]), by_text[row[2]], row[3], row[4], text_bool(row[5]), row[6:16], row[16], row[17])
        for row in rows
    ]


def closed_trades_member(stand_in: dict, *, width: int, depth: int):
    """The last `depth` closed trades of each of the user's (account, symbol) pairs."""
    ranked = (
        ClosedTrade.objects.filter(account__user_id=stand_in["user"])
        .annotate(rank=Window(RowNumber(), partition_by=[F("account_id"), F("symbol")], order_by=closed_trades_order()))
        .filter(rank__lte=depth)
    )
    return member(ranked, "C", ["account_id", "symbol", "closed_at", "realized_pnl", "id"], width)


def closed_trades_parse(rows: list) -> dict:
    """{(account_id, symbol): [(closed_at, realized_pnl)]} from "C" rows, in
    `books.closed_trades_recent`'s order (ties included)."""
    trades: dict = {}
    for row in rows:
        trades.setdefault((int(row[1]), row[2]), []).append((text_datetime(row[3]), int(row[5]), Decimal(row[4])))
    for pair, closed in trades.items():
        closed.sort(reverse=True)  # newest first; at one instant, the later row first
        trades[pair] = [(closed_at, pnl) for closed_at, _, pnl in closed]
    return trades


PAPER_ORDER_COLUMNS = (
    "account_id",
    "symbol",
    "id",
    "client_order_id",
    "side",
    "amount",
    "filled",
    "price",
    "reduce_only",
    "created_at",
)


def paper_orders_member(stand_in: dict, *, width: int):
    """The user's open paper orders, every account and symbol (`paper_orders_parse` picks)."""
    orders = PaperOrder.objects.filter(account__user_id=stand_in["user"], status=PaperOrder.Status.OPEN)
    return member(orders, "O", [*PAPER_ORDER_COLUMNS], width)


def paper_orders_parse(rows: list, *, account_id: int, symbol: str) -> list:
    """`services.paper.paper_open_orders(account_id=, symbol=)`'s answer from "O" rows:
    that account's open orders on `symbol`, oldest first (ties by id)."""
    symbol = normalize_symbol(symbol)
    picked = [row for row in rows if int(row[1]) == account_id and row[2] == symbol]
    picked.sort(key=lambda row: (text_datetime(row[10]), int(row[3])))
    return [
        OpenOrder(
            id=row[3],
            client_order_id=row[4],
            symbol=row[2],
            side=row[5],
            amount=Decimal(row[6]),
            filled=Decimal(row[7]),
            price=text_decimal(row[8]),
            reduce_only=text_bool(row[9]),
        )
        for row in picked
    ]
