"""`evaluation_run`'s reads in two database round trips and one Redis round trip, whatever the book's size
(`POST /risk/evaluate` pays them on every request; SPEC §11, issue 14).

1. `book_and_desk_load`: the user's accounts with their balance and the UTC day's row,
   their open positions, and (when the configured caps need them) the desk's totals, as
   one UNION ALL (accounts' parts: `accounts.selectors.book_rows`);
2. `state_load`: the user's enabled limits, open alerts and those cooling down, latched
   or recently acted breaker trips (with their action results, for the report), latched
   or recently acted ladder steps, officer re-arms of loss streaks, and the closed trades
   that streak breakers read (accounts' part), as another;
3. `version_and_ranges`: the configuration's version and the volatility breakers' price
   ranges, in one Redis round trip.

What parses the same rows as the call before is reused (risk.services.request_memo).

The pre-trade check (`check_order`) reads its book and desk totals with the first
(scoped to its order's symbol and exchange) and its resting orders on paper with
`paper_resting_load`, compiled once the same way.

They fill the same views as the loaders the index and the sweep use
(`snapshots.book_load` + `desk_totals_load`, `open_states_load`, `limits_load`,
`breaker_inputs.streak_inputs_load`), with the same filters and the same orders (ties
included); the decision code that follows is shared. The SQL is compiled once per
configuration shape (`etrms.text_rows`); the user, the UTC day of `now` and the time
windows are each call's.
"""

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import itemgetter

from django.db.models import Q

from accounts.selectors.book_rows import (
    book_members,
    book_rows_parse,
    closed_trades_member,
    closed_trades_parse,
    paper_orders_member,
    paper_orders_parse,
)
from accounts.selectors.books import NO_TRADES
from etrms.outage import REDIS_ERRORS, degraded
from etrms.redis_client import platform_redis
from etrms.text_rows import compiled_rows, member, text_bool, text_datetime
from risk.models import AlertStatus, BreakerTrip, ConditionType, LadderTrip, RiskAlert, RiskLimit
from risk.services.breaker_inputs import streak_cutoff_add, streak_pairs, watched_markets
from risk.services.hooks import INDEX_VERSION_KEY
from risk.services.open_state import open_states_load, step_add, trip_add
from risk.services.outcome import OpenState
from risk.services.prices import market_ranges_queue, market_ranges_read
from risk.services.request_memo import BOOKS, LIMITS
from risk.services.snapshots import LIMIT_TEXT, Book, ConfigView, DeskTotals, limit_view

logger = logging.getLogger(__name__)

BOOK_WIDTH = 18
STATE_WIDTH = 10
PAPER_WIDTH = 11
LIMIT_COLUMNS = ("id", "symbol", "limit_type", *LIMIT_TEXT, "created_at")
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
STEP_COLUMNS = ("id", "latch_key", "triggered_at", "dry_run", "released_at")


# --- 1. the book and the desk --------------------------------------------------------------
def book_and_desk_load(
    *, user_id, config: ConfigView, now: datetime, desk_scope: tuple[set, set] | None = None
) -> tuple[Book, DeskTotals | None]:
    """One user's book and, when `config.needs_desk_totals`, the desk's totals: one query
    (accounts, balances, the rows of `now`'s UTC day, positions, desk sums; the nets of
    capped symbols and the exposure of capped exchanges when such caps are set).
    `desk_scope` (symbols, exchanges) names the capped symbols and exchanges whose desk
    totals to keep, as `desk_totals_load`'s arguments; the book's own by default (the
    pre-trade check passes its order's)."""
    owner = uuid.UUID(str(user_id))
    wants_desk = config.needs_desk_totals
    capped_symbols = tuple(sorted(s for s, (size, _) in config.symbol_caps.items() if size is not None))
    capped_exchanges = tuple(sorted(e for e, cap in config.exchange_caps.items() if cap is not None))
    if not wants_desk:
        capped_symbols = capped_exchanges = ()
    shape = ("book", wants_desk, capped_symbols, capped_exchanges)
    rows = compiled_rows(
        shape,
        lambda stand_in: book_members(
            stand_in,
            width=BOOK_WIDTH,
            desk_sums=wants_desk,
            capped_symbols=capped_symbols,
            capped_exchanges=capped_exchanges,
        ),
        {"user": owner, "day": now.astimezone(UTC).date()},
        width=BOOK_WIDTH,
    )
    if desk_scope is not None:
        return _book_and_desk(rows, user_id=user_id, owner=owner, wants_desk=wants_desk, desk_scope=desk_scope)
    key = (user_id, shape)
    kept = BOOKS.get(key, rows)  # the same rows parse to the same views (request_memo)
    if kept is None:
        kept = _book_and_desk(rows, user_id=user_id, owner=owner, wants_desk=wants_desk, desk_scope=None)
        BOOKS.put(key, rows, kept)
    return kept


def _book_and_desk(rows: list, *, user_id, owner, wants_desk: bool, desk_scope) -> tuple[Book, DeskTotals | None]:
    parsed = book_rows_parse(rows, owner=owner, desk_sums=wants_desk)
    book = Book(user_id=user_id, positions=parsed.positions, accounts=parsed.accounts)
    if parsed.desk is None or not (book.positions or book.accounts):
        return book, None
    # as desk_totals_load: only the capped symbols and exchanges this book trades (or desk_scope names)
    desk = DeskTotals(**parsed.desk)
    if desk_scope is None:
        desk_scope = {position.symbol for position in book.positions}, {p.exchange for p in book.positions}
    symbols, exchanges = desk_scope
    desk.symbol_net = {symbol: net for symbol, net in desk.symbol_net.items() if symbol in symbols}
    desk.exchange_exposure = {name: gross for name, gross in desk.exchange_exposure.items() if name in exchanges}
    return book, desk


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
    """Limits, open alerts and cooling ones, trips, ladder steps, re-arms and
    closed-trade streaks of one user: one query. Closed trades come for all the user's
    accounts and symbols; `streak_inputs` keeps the pairs the breakers look at."""
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


OPEN_STATES_COMPILED_MAX = 4  # users read one compiled query each; more: the ORM's four queries for all


def open_states_read(*, user_ids: list, config: ConfigView, now: datetime) -> dict:
    """`open_state.open_states_load`'s answer ({user_id: OpenState}). A few users (the
    risk index's re-read after a crossing's writes) are read each in `state_load`'s one
    compiled query: building the four ORM queries took about 5 ms of the 8 ms a crossing
    kept the feed's thread after its PUBLISH (bench/README.md, the feed, stop 21)."""
    if len(user_ids) > OPEN_STATES_COMPILED_MAX:
        return open_states_load(user_ids=user_ids, config=config, now=now)
    return {user_id: state_load(user_id=user_id, config=config, now=now).open_state for user_id in user_ids}


def _state_members(stand_in: dict, *, cooling: bool, streak_ids: tuple, depth: int) -> list:
    user_id = stand_in["user"]
    visible = ~Q(status=AlertStatus.RESOLVED)
    if cooling:
        visible |= Q(status=AlertStatus.RESOLVED, resolved_at__gt=stand_in["alerts_since"])
    trips = Q(released_at__isnull=True) | Q(dry_run=False, triggered_at__gt=stand_in["live_since"])
    if streak_ids:
        trips |= Q(release_reason="rearmed", breaker_id__in=streak_ids)
    # open_states_load's ladder rows: latched, or acted live within the alert cooldown
    steps = Q(released_at__isnull=True) | Q(dry_run=False, triggered_at__gt=stand_in["alerts_since"])
    members = [
        member(RiskLimit.objects.filter(user_id=user_id, enabled=True), "L", [*LIMIT_COLUMNS], STATE_WIDTH),
        member(
            RiskAlert.objects.filter(visible, user_id=user_id).exclude(dedup_key=""),
            "A",
            ["dedup_key", "status", "resolved_at"],
            STATE_WIDTH,
        ),
        member(BreakerTrip.objects.filter(trips, user_id=user_id), "T", [*TRIP_COLUMNS], STATE_WIDTH),
        member(LadderTrip.objects.filter(steps, user_id=user_id), "K", [*STEP_COLUMNS], STATE_WIDTH),
    ]
    if streak_ids:
        members.append(closed_trades_member(stand_in, width=STATE_WIDTH, depth=depth))
    return members


def _state_parse(rows: list, *, user_id, live_since, streak_ids: set) -> RequestState:
    state = RequestState(streaks_loaded=bool(streak_ids))
    limit_rows: list = []
    trade_rows: list = []
    open_state = state.open_state
    for row in rows:
        kind = row[0]
        if kind == "L":
            limit_rows.append(row)
        elif kind == "A":
            key, status, resolved_at = row[1], row[2], text_datetime(row[3])
            if status != AlertStatus.RESOLVED:
                open_state.alert_keys.add(key)
            else:
                open_state.cooling[key] = max(open_state.cooling.get(key, resolved_at), resolved_at)
        elif kind == "T":
            _trip_parse(row, state, live_since=live_since, streak_ids=streak_ids)
        elif kind == "K":
            step_add(
                open_state, uuid.UUID(row[1]), row[2], text_datetime(row[3]), text_bool(row[4]), text_datetime(row[5])
            )
        elif kind == "C":
            trade_rows.append(row)
    # limits_load's order, ties included: newest first, then by id. An id's text (32
    # lowercase hex digits on SQLite, the dashed form on PostgreSQL) sorts as the UUID.
    limit_rows.sort(key=itemgetter(1))
    limit_rows.sort(key=lambda row: text_datetime(row[8]), reverse=True)
    state.limits = LIMITS.get(user_id, limit_rows)  # the same rows parse to the same views (request_memo)
    if state.limits is None:
        state.limits = [limit_view(uuid.UUID(row[1]), user_id, *row[2:8]) for row in limit_rows]
        LIMITS.put(user_id, limit_rows, state.limits)
    state.closed_trades = closed_trades_parse(trade_rows)
    return state


def _trip_parse(row, state: RequestState, *, live_since, streak_ids: set) -> None:
    trip_id, breaker_id, latch_key = uuid.UUID(row[1]), None if row[2] is None else int(row[2]), row[3]
    triggered_at, dry_run, action_status = text_datetime(row[4]), text_bool(row[5]), row[6]
    released_at, release_reason = text_datetime(row[7]), row[8]
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
    return {pair: state.closed_trades.get(pair, NO_TRADES) for pair in pairs}, state.streak_cutoffs


# --- 3. the configuration's version and the price ranges: one Redis round trip ---------------
def version_and_ranges(*, book: Book, config: ConfigView, now: datetime, breakers: bool) -> tuple[int | None, dict]:
    """The risk index version (`snapshots.config_view_get`'s check) and, with `breakers`,
    the price ranges of the volatility breakers' markets in the book (`breaker_inputs.
    price_ranges_load`'s answer), in one pipeline; one more call only when a market of
    the book could trip. Ranges only when the version is `config`'s. The version is None
    when Redis does not answer (the volatility breakers cannot tell: they do not trip)."""
    by_window = watched_markets(book=book, config=config) if breakers else {}
    floors = config.volatility_floors() if by_window else {}
    try:
        pipe = platform_redis().pipeline(transaction=False)
        pipe.get(INDEX_VERSION_KEY)
        windows = market_ranges_queue(pipe, by_window, floors=floors)
        replies = pipe.execute()
        version = int(replies[0] or 0)
        if version != config.version or not windows:
            return version, {}
        return version, market_ranges_read(windows, replies[1:], by_window, floors=floors, now=now.timestamp())
    except REDIS_ERRORS as error:
        degraded(logger, "Risk index version and volatility ranges unavailable", error)
        return None, {}


# --- 4. the pre-trade check's resting orders on paper ----------------------------------------
def paper_resting_load(*, user_id, account_id: int, symbol: str) -> list:
    """`paper_open_orders(account_id=, symbol=)`'s answer (OpenOrders, oldest first) in
    one query compiled once: the user's open paper orders, the account and symbol
    picked from them."""
    rows = compiled_rows(
        ("paper-orders",),
        lambda stand_in: [paper_orders_member(stand_in, width=PAPER_WIDTH)],
        {"user": uuid.UUID(str(user_id))},
        width=PAPER_WIDTH,
    )
    return paper_orders_parse(rows, account_id=account_id, symbol=symbol)
