"""Reads of the accounts app: snapshots for the API, the risk engine and the feed (the
risk engine's in-memory books and desk aggregates: `accounts.selectors.books`).

Scoping: `user_id=None` means every user (a risk officer's view); otherwise one user's.
Money is Decimal in the selectors and in every sum the ETRMS payload builders
(`*_payload`, `account_entry`) make; each number becomes a JSON number once, at the end
(`etrms.formatting.json_numbers`), so a total reads 74946.49, never 74946.48999999999.
"""

from collections import defaultdict
from decimal import Decimal

from django.db.models import QuerySet

from accounts.exchanges import PAPER
from accounts.models import ExchangeAccount, MonitoringState, PaperOrder, Position
from etrms.formatting import iso_utc, json_numbers

ZERO = Decimal(0)


# --- for the risk engine and the feed ---------------------------------------------------
def position_list(
    *,
    user_id=None,
    user_ids=None,
    exchange: str | None = None,
    symbol: str | None = None,
    account_id=None,
    accounts=None,
) -> QuerySet[Position]:
    """Open positions with their account joined (one query); `accounts`: ids, account
    rows or a queryset of them."""
    positions = Position.objects.select_related("account").filter(closed_at__isnull=True)
    if account_id is not None:
        positions = positions.filter(account_id=account_id)
    if accounts is not None:
        positions = positions.filter(account__in=accounts)
    if user_id is not None:
        positions = positions.filter(account__user_id=user_id)
    if user_ids is not None:
        positions = positions.filter(account__user_id__in=list(user_ids))
    if exchange is not None:
        positions = positions.filter(account__exchange=exchange)
    if symbol is not None:
        positions = positions.filter(symbol=symbol)
    return positions.order_by("account__exchange", "symbol", "side", "id")


def account_list(*, user_id=None, exchange: str | None = None, enabled: bool | None = None) -> QuerySet:
    """Exchange accounts with their balance snapshot joined (one query)."""
    accounts = ExchangeAccount.objects.select_related("balance")
    if user_id is not None:
        accounts = accounts.filter(user_id=user_id)
    if exchange is not None:
        accounts = accounts.filter(exchange=exchange)
    if enabled is not None:
        accounts = accounts.filter(enabled=enabled)
    return accounts.order_by("exchange", "id")


def position_get(*, position_id) -> Position | None:
    """The position (open or closed) with its account, or None."""
    return Position.objects.select_related("account").filter(pk=position_id).first()


def account_get(*, account_id) -> ExchangeAccount:
    return ExchangeAccount.objects.get(pk=account_id)


def account_holders(*, exchange: str | None = None) -> QuerySet:
    """The ids of the users with an exchange account (on `exchange` when given), as a
    `values("user_id")` queryset: a subquery where another filter nests it."""
    accounts = ExchangeAccount.objects.all() if exchange is None else ExchangeAccount.objects.filter(exchange=exchange)
    return accounts.values("user_id")


def account_user_ids(*, exchange: str | None = None) -> list:
    """Every user with an exchange account (on `exchange` when given)."""
    return list(account_holders(exchange=exchange).values_list("user_id", flat=True).distinct())


def account_venues(*, user_ids=None) -> dict[str, set[str]]:
    """{str(user id): the exchanges that user has an account on} for `user_ids` (every
    user when None); one query. A user without an account has no key."""
    accounts = (
        ExchangeAccount.objects.all() if user_ids is None else ExchangeAccount.objects.filter(user_id__in=user_ids)
    )
    venues = defaultdict(set)
    for user_id, exchange in accounts.values_list("user_id", "exchange"):
        venues[str(user_id)].add(exchange)
    return dict(venues)


def account_exchanges(*, user_id) -> set[str]:
    """The exchanges `user_id` has an account on."""
    return set(ExchangeAccount.objects.filter(user_id=user_id).values_list("exchange", flat=True))


def account_open_symbols(*, account: ExchangeAccount) -> set[str]:
    """Symbols `account` holds an open position in and, on paper, has an order resting in."""
    symbols = set(account.positions.filter(closed_at__isnull=True).values_list("symbol", flat=True))
    if account.exchange == PAPER:
        open_orders = account.paper_orders.filter(status=PaperOrder.Status.OPEN)
        symbols |= set(open_orders.values_list("symbol", flat=True))
    return symbols


def monitoring_state_get() -> MonitoringState:
    """The monitoring state (an unsaved stopped one before the first start)."""
    return MonitoringState.objects.filter(pk=1).first() or MonitoringState(pk=1)


def monitored_markets() -> dict[str, list[str]]:
    """What the feed streams while monitoring runs: {exchange: symbols} for each
    monitored exchange, the chosen symbols plus every symbol with an open position there
    (a position nobody prices cannot be protected). Empty when monitoring is stopped."""
    state = monitoring_state_get()
    if not state.running:
        return {}
    markets = {exchange: set(state.symbols) for exchange in state.exchanges}
    held = (
        Position.objects.filter(account__exchange__in=list(markets), closed_at__isnull=True)
        .values_list("account__exchange", "symbol")
        .distinct()
    )
    for exchange, symbol in held:
        markets[exchange].add(symbol)
    return {exchange: sorted(symbols) for exchange, symbols in markets.items()}


# --- ETRMS payloads ---------------------------------------------------------------------
def _num(value) -> Decimal | None:
    return None if value is None else Decimal(value)


def position_item(position: Position, *, include_user: bool) -> dict:
    item = {
        "id": position.pk,
        "exchange": position.account.exchange,
        "symbol": position.symbol,
        "side": position.side,
        "size": _num(position.size),
        "entry_price": _num(position.entry_price),
        "mark_price": _num(position.mark_price),
        "notional": _num(position.notional),
        "unrealized_pnl": _num(position.unrealized_pnl),
        "realized_pnl": _num(position.realized_pnl),
        "leverage": _num(position.leverage),
        "liquidation_price": _num(position.liquidation_price),
        "margin_ratio": _num(position.margin_ratio),
        "opened_at": iso_utc(position.opened_at),
        "mark_updated_at": iso_utc(position.mark_updated_at),
    }
    if include_user:
        item["user_id"] = str(position.account.user_id)
    return item


def _group(items: list[dict]) -> dict:
    return {
        "total_position_value": sum((item["notional"] for item in items), ZERO),
        "total_unrealized_pnl": sum((item["unrealized_pnl"] for item in items), ZERO),
        "positions": items,
    }


def positions_payload(
    *, positions: list[Position], exchanges: list[str] | None = None, include_user: bool = False
) -> dict:
    """ETRMS's positions format: totals, `exchanges` and `positions_by_symbol`.
    `exchanges` lists accounts' venues to show even without positions."""
    by_exchange: dict[str, list[dict]] = defaultdict(list)
    by_symbol: dict[str, list[dict]] = defaultdict(list)
    for exchange in exchanges or []:
        by_exchange.setdefault(exchange, [])
    for position in positions:
        item = position_item(position, include_user=include_user)
        by_exchange[item["exchange"]].append(item)
        by_symbol[item["symbol"]].append(item)
    symbols = {}
    for symbol, items in sorted(by_symbol.items()):
        group = _group(items)
        group["net_size"] = sum((item["size"] if item["side"] == "long" else -item["size"] for item in items), ZERO)
        symbols[symbol] = group
    all_items = [item for items in by_exchange.values() for item in items]
    return json_numbers(
        {
            "total_position_value": sum((item["notional"] for item in all_items), ZERO),
            "total_unrealized_pnl": sum((item["unrealized_pnl"] for item in all_items), ZERO),
            "exchanges": {exchange: _group(items) for exchange, items in sorted(by_exchange.items())},
            "positions_by_symbol": symbols,
        }
    )


def positions_view(*, user_id=None) -> tuple[list[Position], list[str]]:
    """Open positions and the venues of the accounts in scope: two queries."""
    positions = list(position_list(user_id=user_id))
    venues = account_venues(user_ids=None if user_id is None else [user_id])
    return positions, sorted(set().union(*venues.values()))


_SUMMED = ("balance", "equity", "available", "margin_used", "unrealized_pnl", "peak_equity", "net_transfers")


def _account_numbers(account: ExchangeAccount) -> dict:
    balance = getattr(account, "balance", None)
    if balance is None:
        return {**{name: ZERO for name in _SUMMED}, "margin_ratio": None}
    return {
        "balance": balance.balance,
        "equity": balance.equity,
        "available": balance.available,
        "margin_used": balance.margin_used,
        "unrealized_pnl": balance.unrealized_pnl,
        "margin_ratio": _num(balance.margin_ratio),
        "peak_equity": balance.peak_equity,
        "net_transfers": balance.net_transfers,
    }


def _account_status(account: ExchangeAccount) -> dict:
    return {
        "label": account.label,
        "testnet": account.testnet,
        "enabled": account.enabled,
        "has_credentials": account.has_credentials,
        "last_synced_at": iso_utc(account.last_synced_at),
        "last_sync_failed": account.last_sync_failed,
        "last_sync_error": account.last_sync_error or None,
    }


def account_entry(accounts: list[ExchangeAccount], *, include_user: bool) -> dict:
    """One exchange's entry: its account's numbers and status (a trader), or the sum
    over every user's account on it with a `by_user` breakdown (an officer)."""
    return json_numbers(_account_entry(accounts, include_user=include_user))


def _account_entry(accounts: list[ExchangeAccount], *, include_user: bool) -> dict:
    if not include_user:
        account = accounts[0]
        return {**_account_numbers(account), **_account_status(account)}
    entry = {name: ZERO for name in _SUMMED}
    ratios = []
    by_user = {}
    for account in accounts:
        numbers = _account_numbers(account)
        for name in _SUMMED:
            entry[name] += numbers[name]
        if numbers["margin_ratio"] is not None:
            ratios.append(numbers["margin_ratio"])
        by_user[str(account.user_id)] = {**numbers, **_account_status(account)}
    entry["margin_ratio"] = max(ratios) if ratios else None  # the worst account
    entry["by_user"] = by_user
    return entry


def accounts_payload(*, accounts: list[ExchangeAccount], include_user: bool) -> dict:
    """ETRMS's accounts format: `{"accounts": {exchange: {balance, equity, available,
    margin_used, ...}}}` plus totals."""
    grouped: dict[str, list[ExchangeAccount]] = defaultdict(list)
    for account in accounts:
        grouped[account.exchange].append(account)
    entries = {
        exchange: _account_entry(items, include_user=include_user) for exchange, items in sorted(grouped.items())
    }
    totals = {
        f"total_{name}": sum((entry[name] for entry in entries.values()), ZERO)
        for name in ("balance", "equity", "available", "margin_used", "unrealized_pnl")
    }
    return json_numbers({"accounts": entries, **totals})


def monitoring_status_payload() -> dict:
    from accounts.services.monitoring import MONITORING_TASK_NAME, feed_status_read, monitoring_interval_default

    state = monitoring_state_get()
    return {
        "running": state.running,
        "exchanges": state.exchanges,
        "symbols": state.symbols,
        "interval": state.interval_seconds if state.running else monitoring_interval_default(),
        "last_sync": iso_utc(state.last_sync_at),
        "last_error": state.last_error or None,
        "last_error_at": iso_utc(state.last_error_at),
        "started_at": iso_utc(state.started_at),
        "stopped_at": iso_utc(state.stopped_at),
        "scheduled_task": MONITORING_TASK_NAME if state.pk and state.started_at else None,
        "feed": feed_status_read(),
    }
