# ruff: noqa: S608 -- SQL text here is the ORM's own or names tables from the models; values are parameters.
"""`evaluation_run`'s reads in two database round trips, whatever the book's size
(`POST /risk/evaluate` pays them on every request; SPEC §11, issue 14).

1. `book_and_desk_load`: the user's accounts with their balance and the UTC day's row,
   their open positions, and (when the configured caps need them) the desk's totals, as
   one UNION ALL;
2. `state_load`: the user's enabled limits, open alerts and those cooling down, latched
   or recently acted trips (with their action results, for the report) and officer
   re-arms of loss streaks, and the closed trades that streak breakers read, as another.

They fill the same views as the loaders the index and the sweep use
(`snapshots.book_load` + `desk_totals_load`, `open_states_load`, `limits_load`,
`breaker_inputs.streak_inputs_load`), with the same filters and the same orders (ties
included); the decision code that follows is shared. The SQL is compiled once per
configuration shape (`request_sql`); the user, the UTC day of `now` and the time windows
are each call's.
"""

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.models import Case, CharField, F, FilteredRelation, Q, Sum, When, Window
from django.db.models.expressions import RawSQL
from django.db.models.functions import Abs, RowNumber

from accounts.models import AccountDay, Balance, ClosedTrade, ExchangeAccount, Position
from risk.models import AlertStatus, BreakerTrip, ConditionType, RiskAlert, RiskLimit
from risk.services.breaker_inputs import streak_cutoff_add, streak_order, streak_pairs
from risk.services.open_state import trip_add
from risk.services.outcome import OpenState
from risk.services.request_sql import compiled_rows, member
from risk.services.snapshots import (
    POSITION_DATETIMES,
    POSITION_DECIMALS,
    ZERO,
    AccountView,
    Book,
    ConfigView,
    DeskTotals,
    LimitView,
    PositionView,
    _datetime,
    _decimal,
    position_view,
)

BOOK_WIDTH = 18
STATE_WIDTH = 10
LIMIT_COLUMNS = ("id", "symbol", "limit_type", "threshold_value", "warning_value", "equity_peaks", "created_at")
TRIP_COLUMNS = (
    "id",
    "breaker_id",
    "latch_key",
    "triggered_at",
    "dry_run",
    "action_status",
    "released_at",
    "release_reason",
    "action_result",
)


def _bool(text) -> bool:
    return text in ("1", "true", "t", "True")


# --- 1. the book and the desk --------------------------------------------------------------
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
    return [RawSQL(sql, params, output_field=CharField()) for sql, params in sums]  # noqa: S611


def book_and_desk_load(*, user_id, config: ConfigView, now: datetime) -> tuple[Book, DeskTotals | None]:
    """One user's book and, when `config.needs_desk_totals`, the desk's totals: one query
    (accounts, balances, the rows of `now`'s UTC day, positions, desk sums; the nets of
    capped symbols and the exposure of capped exchanges when such caps are set)."""
    owner = uuid.UUID(str(user_id))
    wants_desk = config.needs_desk_totals
    capped_symbols = tuple(sorted(s for s, (size, _) in config.symbol_caps.items() if size is not None))
    capped_exchanges = tuple(sorted(e for e, cap in config.exchange_caps.items() if cap is not None))
    if not wants_desk:
        capped_symbols = capped_exchanges = ()
    rows = compiled_rows(
        ("book", wants_desk, capped_symbols, capped_exchanges),
        lambda stand_in: _book_members(stand_in, wants_desk, capped_symbols, capped_exchanges),
        {"user": owner, "day": now.astimezone(UTC).date()},
        width=BOOK_WIDTH,
    )
    book, desk = _book_parse(rows, owner=owner, wants_desk=wants_desk)
    book.user_id = user_id
    return book, desk


def _book_members(stand_in: dict, wants_desk: bool, capped_symbols: tuple, capped_exchanges: tuple) -> list:
    user_id, today = stand_in["user"], stand_in["day"]
    accounts = ExchangeAccount.objects.filter(user_id=user_id).annotate(
        today=FilteredRelation("days", condition=Q(days__date=today))
    )
    account_columns = [
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
    ]
    if wants_desk:
        account_columns += _desk_sums(today)
    open_positions = Position.objects.filter(closed_at__isnull=True, account__user_id=user_id)
    members = [
        member(accounts, "A", account_columns, BOOK_WIDTH),
        member(
            open_positions,
            "P",
            ["id", "account_id", "symbol", "side", "hedged", *POSITION_DECIMALS, *POSITION_DATETIMES],
            BOOK_WIDTH,
        ),
    ]
    desk_open = Position.objects.filter(closed_at__isnull=True)
    if capped_symbols:
        signed = Case(When(side="long", then=F("notional")), default=-F("notional"))
        nets = desk_open.filter(symbol__in=capped_symbols).values("symbol").annotate(net=Sum(signed))
        members.append(member(nets, "S", ["symbol", "net"], BOOK_WIDTH))
    if capped_exchanges:
        gross = (
            desk_open.filter(account__exchange__in=capped_exchanges)
            .values("account__exchange")
            .annotate(gross=Sum(Abs("notional")))
        )
        members.append(member(gross, "E", ["account__exchange", "gross"], BOOK_WIDTH))
    return members


def _book_parse(rows: list, *, owner, wants_desk: bool) -> tuple[Book, DeskTotals | None]:
    accounts: dict = {}
    position_rows, nets, exposures = [], {}, {}
    desk = DeskTotals() if wants_desk else None
    for row in rows:
        kind = row[0]
        if kind == "P":
            position_rows.append(row)
        elif kind == "A":
            account_id = int(row[1])
            has_balance = row[4] is not None
            account = AccountView(
                id=account_id,
                user_id=owner,
                exchange=row[2],
                last_sync_failed=_bool(row[3]),
                has_balance=has_balance,
                balance=Decimal(row[5]) if has_balance else ZERO,
                maintenance_margin=_decimal(row[7]),
                peak_equity=Decimal(row[8]) if has_balance else ZERO,
                net_transfers=Decimal(row[9]) if has_balance else ZERO,
                day_start_unrealized=Decimal(row[6]) if has_balance else ZERO,
            )
            if has_balance and row[10] is not None:  # today's row
                account.day_realized, account.day_start_unrealized = Decimal(row[10]), Decimal(row[11])
            accounts[account_id] = account
            if desk is not None:
                gross, balances, unrealized, realized, start, count = (_decimal(value) or ZERO for value in row[12:18])
                desk.total_exposure = gross
                desk.equity = balances + unrealized
                desk.daily_pnl = realized + unrealized - start
                desk.balances = int(count)
        elif kind == "S":
            nets[row[1]] = Decimal(row[2])
        elif kind == "E":
            exposures[row[1]] = Decimal(row[2])
    # The loaders' orders (the models' Meta.ordering): ties among limits and accounts are
    # decided by the first one met.
    accounts = dict(sorted(accounts.items(), key=lambda item: (item[1].exchange, item[0])))
    positions = sorted((_position(row, accounts) for row in position_rows), key=lambda p: (p.symbol, p.side))
    if desk is not None:
        if not (positions or accounts):
            desk = None
        else:  # as desk_totals_load: only the capped symbols and exchanges this book trades
            symbols = {position.symbol for position in positions}
            exchanges = {position.exchange for position in positions}
            desk.symbol_net = {symbol: net for symbol, net in nets.items() if symbol in symbols}
            desk.exchange_exposure = {exchange: gross for exchange, gross in exposures.items() if exchange in exchanges}
    return Book(user_id=owner, positions=positions, accounts=accounts), desk


def _position(row, accounts: dict) -> PositionView:
    """A "P" row: kind, id, account, symbol, side, hedged, POSITION_DECIMALS, POSITION_DATETIMES (as text)."""
    return position_view(int(row[1]), accounts[int(row[2])], row[3], row[4], _bool(row[5]), row[6:16], row[16], row[17])


# --- 2. limits, open state, streaks ------------------------------------------------------------
@dataclass
class RequestState:
    limits: list = field(default_factory=list)  # [LimitView]
    open_state: OpenState = field(default_factory=OpenState)
    action_results: dict = field(default_factory=dict)  # {latched trip id: action_result}
    closed_trades: dict = field(default_factory=dict)  # {(account_id, symbol): [(closed_at, pnl)], newest first}
    streak_cutoffs: dict = field(default_factory=dict)  # {(breaker_id, account_id, symbol): last re-arm}
    streaks_loaded: bool = False


def state_load(*, user_id, config: ConfigView, now: datetime) -> RequestState:
    """Limits, open alerts and cooling ones, trips, re-arms and closed-trade streaks of
    one user: one query. Closed trades come for all the user's accounts and symbols;
    `streak_inputs` keeps the pairs the breakers look at."""
    longest = max((breaker.cooldown_seconds for breaker in config.breakers), default=0)
    streak_breakers = [b for b in config.breakers if b.condition_type == ConditionType.CONSECUTIVE_LOSSES]
    streak_ids = tuple(sorted(b.id for b in streak_breakers))
    depth = int(max(breaker.threshold for breaker in streak_breakers)) if streak_breakers else 0
    cooling = config.alert_cooldown_seconds > 0
    live_since = now - timedelta(seconds=longest)
    owner = uuid.UUID(str(user_id))
    rows = compiled_rows(
        ("state", cooling, streak_ids, depth),
        lambda stand_in: _state_members(stand_in, cooling=cooling, streak_ids=streak_ids, depth=depth),
        {
            "user": owner,
            "alerts_since": now - timedelta(seconds=config.alert_cooldown_seconds),
            "live_since": live_since,
        },
        width=STATE_WIDTH,
    )
    return _state_parse(rows, user_id=owner, live_since=live_since, streak_ids=set(streak_ids))


def _state_members(stand_in: dict, *, cooling: bool, streak_ids: tuple, depth: int) -> list:
    user_id = stand_in["user"]
    visible = ~Q(status=AlertStatus.RESOLVED)
    if cooling:
        visible |= Q(status=AlertStatus.RESOLVED, resolved_at__gt=stand_in["alerts_since"])
    trips = Q(released_at__isnull=True) | Q(dry_run=False, triggered_at__gt=stand_in["live_since"])
    if streak_ids:
        trips |= Q(release_reason="rearmed", breaker_id__in=streak_ids)
    members = [
        member(RiskLimit.objects.filter(user_id=user_id, enabled=True), "L", [*LIMIT_COLUMNS], STATE_WIDTH),
        member(
            RiskAlert.objects.filter(visible, user_id=user_id).exclude(dedup_key=""),
            "A",
            ["dedup_key", "status", "resolved_at"],
            STATE_WIDTH,
        ),
        member(BreakerTrip.objects.filter(trips, user_id=user_id), "T", [*TRIP_COLUMNS], STATE_WIDTH),
    ]
    if streak_ids:
        ranked = (
            ClosedTrade.objects.filter(account__user_id=user_id)
            .annotate(rank=Window(RowNumber(), partition_by=[F("account_id"), F("symbol")], order_by=streak_order()))
            .filter(rank__lte=depth)
        )
        members.append(member(ranked, "C", ["account_id", "symbol", "closed_at", "realized_pnl", "id"], STATE_WIDTH))
    return members


def _state_parse(rows: list, *, user_id, live_since, streak_ids: set) -> RequestState:
    state = RequestState(streaks_loaded=bool(streak_ids))
    limit_created: list = []
    trade_rows: dict = {}
    open_state = state.open_state
    for row in rows:
        kind = row[0]
        if kind == "L":
            limit_type, peaks = row[3], row[6]
            limit_created.append(_datetime(row[7]))
            state.limits.append(
                LimitView(
                    id=uuid.UUID(row[1]),
                    user_id=user_id,
                    symbol=row[2],
                    limit_type=limit_type,
                    threshold=Decimal(row[4]),
                    warning=_decimal(row[5]),
                    equity_peaks=json.loads(peaks) if limit_type == "drawdown" and peaks else {},
                )
            )
        elif kind == "A":
            key, status, resolved_at = row[1], row[2], _datetime(row[3])
            if status != AlertStatus.RESOLVED:
                open_state.alert_keys.add(key)
            else:
                open_state.cooling[key] = max(open_state.cooling.get(key, resolved_at), resolved_at)
        elif kind == "T":
            _trip_parse(row, state, live_since=live_since, streak_ids=streak_ids)
        elif kind == "C":
            closed = (_datetime(row[3]), int(row[5]), Decimal(row[4]))
            trade_rows.setdefault((int(row[1]), row[2]), []).append(closed)
    # limits_load's and streak_inputs_load's orders, ties included
    created = {limit.id: created_at for limit, created_at in zip(state.limits, limit_created, strict=True)}
    state.limits.sort(key=lambda limit: limit.id)
    state.limits.sort(key=lambda limit: created[limit.id], reverse=True)
    for pair, trades in trade_rows.items():
        trades.sort(reverse=True)  # newest first; at one instant, the later row first
        state.closed_trades[pair] = [(closed_at, pnl) for closed_at, _, pnl in trades]
    return state


def _trip_parse(row, state: RequestState, *, live_since, streak_ids: set) -> None:
    trip_id, breaker_id, latch_key = uuid.UUID(row[1]), None if row[2] is None else int(row[2]), row[3]
    triggered_at, dry_run, action_status = _datetime(row[4]), _bool(row[5]), row[6]
    released_at, release_reason = _datetime(row[7]), row[8]
    if released_at is None or (not dry_run and triggered_at > live_since):  # open_states_load's rows
        trip_add(state.open_state, trip_id, breaker_id, latch_key, triggered_at, dry_run, action_status, released_at)
        if released_at is None:
            state.action_results[trip_id] = row[9] or ""
    if release_reason == "rearmed" and breaker_id in streak_ids and released_at is not None:
        streak_cutoff_add(state.streak_cutoffs, breaker_id, latch_key, released_at)


def streak_inputs(state: RequestState, *, book: Book, latched_keys) -> tuple[dict, dict]:
    """`breaker_inputs.streak_inputs_load`'s answer from the loaded rows: the pairs the
    user holds open or has a latched streak on, each with its last closed trades."""
    if not state.streaks_loaded:
        return {}, {}
    pairs = streak_pairs(book, latched_keys)
    if not pairs:
        return {}, {}
    return {pair: state.closed_trades.get(pair, []) for pair in pairs}, state.streak_cutoffs
