"""What evaluation reads, as plain in-memory views, and the loaders that fill them.

Evaluation (`risk.services.assess`) is pure: it works on these views only, so the API
path (one user, a handful of queries), the job sweep and the feed's long-lived index
(the whole desk in memory, reloaded on change) run exactly the same code.

Units: money in quote currency (USD stablecoins 1:1), Decimal end to end; `equity_now`
is the account's wallet balance plus the unrealized PnL of its open positions at their
current marks, so a mark moved by the feed moves equity, margin ratio, leverage,
drawdown and daily PnL at once.
"""

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache

from django.db.models import Case, CharField, F, OuterRef, Subquery, Sum, Value, When
from django.db.models.functions import Abs, Cast, Coalesce

from accounts.models import AccountDay, Balance, ExchangeAccount, Position
from risk.constants import DEFAULT_VOLATILITY_WINDOW_SECONDS, ConditionType
from risk.models import CircuitBreaker, ExchangeConfig, GlobalConfig, RiskLimit, SymbolConfig
from risk.services import hooks

ZERO = Decimal(0)


# --- views ------------------------------------------------------------------------------
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

    def mark_apply(self, price: Decimal, at: datetime) -> bool:
        """Move to mark `price` at `at` (as accounts' `position_mark_apply` does)."""
        if self.mark_updated_at and self.mark_updated_at > at:
            return False
        self.mark_price, self.mark_updated_at = price, at
        self.unrealized_pnl = (price - self.entry_price) * self.size * self.direction
        self.notional = abs(self.size * price)
        if self.side == "long":
            self.best_price = max(self.best_price or price, price)
        else:
            self.best_price = min(self.best_price or price, price)
        self.peak_pnl = max(self.peak_pnl, self.realized_pnl + self.unrealized_pnl)
        return True


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


@dataclass(slots=True, frozen=True)
class LimitView:
    id: object
    user_id: object
    symbol: str | None
    limit_type: str
    threshold: Decimal
    warning: Decimal | None
    equity_peaks: dict


@dataclass(slots=True, frozen=True)
class BreakerView:
    id: int
    name: str
    description: str
    condition_type: str
    threshold: Decimal
    action: str
    symbols: frozenset | None
    exchanges: frozenset | None
    additional_params: dict
    cooldown_seconds: int

    def applies(self, exchange: str, symbol: str) -> bool:
        return (self.exchanges is None or exchange in self.exchanges) and (
            self.symbols is None or symbol in self.symbols
        )


@dataclass(slots=True, frozen=True)
class ConfigView:
    """The desk's caps and switches, with the breakers (everything `hooks` versions)."""

    version: int
    max_total_exposure: Decimal | None
    max_leverage: Decimal | None
    max_drawdown_pct: Decimal | None
    daily_loss_limit: Decimal | None
    max_margin_ratio: Decimal | None
    dry_run: bool
    alert_cooldown_seconds: int
    max_price_age_seconds: int
    symbol_caps: dict  # {symbol: (max_position_size, max_leverage)}
    exchange_caps: dict  # {exchange: max_exposure}
    breakers: tuple

    def volatility_floors(self) -> dict:
        """{window seconds: the lowest threshold % among the enabled volatility breakers}."""
        floors: dict = {}
        for breaker in self.breakers:
            if breaker.condition_type == ConditionType.VOLATILITY:
                window = int(breaker.additional_params.get("window_seconds", DEFAULT_VOLATILITY_WINDOW_SECONDS))
                floors[window] = min(floors.get(window, breaker.threshold), breaker.threshold)
        return floors

    @property
    def needs_desk_totals(self) -> bool:
        return bool(
            self.max_total_exposure is not None
            or self.max_leverage is not None
            or self.daily_loss_limit is not None
            or any(size is not None for size, _ in self.symbol_caps.values())
            or any(cap is not None for cap in self.exchange_caps.values())
        )


@dataclass(slots=True)
class DeskTotals:
    """All users together (SPEC §5: config caps are the desk's)."""

    total_exposure: Decimal = ZERO
    equity: Decimal = ZERO
    daily_pnl: Decimal = ZERO
    balances: int = 0  # accounts with a balance snapshot
    symbol_net: dict = field(default_factory=dict)  # {symbol: signed net notional}
    exchange_exposure: dict = field(default_factory=dict)  # {exchange: sum |notional|}

    @property
    def daily_loss(self) -> Decimal:
        return max(ZERO, -self.daily_pnl)


@dataclass(slots=True)
class Book:
    """One user's open positions and accounts."""

    user_id: object
    positions: list = field(default_factory=list)
    accounts: dict = field(default_factory=dict)  # {account_id: AccountView}


# --- loaders ------------------------------------------------------------------------------
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


def _decimal(text):
    return None if text is None else Decimal(text)


@lru_cache(maxsize=4096)
def _datetime(text) -> datetime | None:
    """A database timestamp's text as an aware datetime. Cached: a sync stamps every
    position of a venue read with one time and a tick every position of its symbol, so a
    book repeats a few texts thousands of times (datetimes are immutable)."""
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


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
        _datetime(mark_updated_at),
        Decimal(notional),
        Decimal(upnl),
        Decimal(realized),
        None if leverage is None else Decimal(leverage),
        Decimal(peak),
        Decimal(best),
        _datetime(opened_at),
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


def _today() -> datetime.date:
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


def book_load(*, user_id) -> Book:
    """One user's book: 3 queries (accounts with balances, today's rows, positions)."""
    accounts = accounts_load(user_id=user_id)
    return Book(user_id=user_id, positions=positions_load(accounts=accounts), accounts=accounts)


def limits_load(**filters) -> list[LimitView]:
    """Enabled limits (decimals as text, parsed here; drawdown peaks only where kept)."""
    rows = (
        RiskLimit.objects.filter(enabled=True, **filters)
        .order_by("-created_at", "id")  # newest first (RiskLimit's order), a tie broken the same way everywhere
        .annotate(
            t_threshold=Cast("threshold_value", output_field=CharField()),
            t_warning=Cast("warning_value", output_field=CharField()),
            t_peaks=Cast("equity_peaks", output_field=CharField()),
        )
        .values_list("id", "user_id", "symbol", "limit_type", "t_threshold", "t_warning", "t_peaks")
    )
    views = []
    for limit_id, user_id, symbol, limit_type, threshold, warning, peaks in rows:
        views.append(
            LimitView(
                id=limit_id,
                user_id=user_id,
                symbol=symbol,
                limit_type=limit_type,
                threshold=Decimal(threshold),
                warning=None if warning is None else Decimal(warning),
                equity_peaks=json.loads(peaks) if limit_type == "drawdown" and peaks else {},
            )
        )
    return views


def desk_totals_load(*, config: "ConfigView", symbols: set, exchanges: set) -> DeskTotals:
    """Desk-wide aggregates in SQL, only those the configured caps need for this book:
    the desk's total exposure (and equity, daily PnL) for the global caps, the net of the
    capped `symbols` and the exposure on the capped `exchanges` the user trades. At most
    four single-pass aggregate queries, whatever the desk's size."""
    desk = DeskTotals()
    open_positions = Position.objects.filter(closed_at__isnull=True)
    if config.max_total_exposure is not None or config.max_leverage is not None:
        desk.total_exposure = open_positions.aggregate(gross=Sum(Abs("notional")))["gross"] or ZERO
    capped_symbols = [s for s in symbols if config.symbol_caps.get(s, (None, None))[0] is not None]
    if capped_symbols:
        signed = Case(When(side="long", then=F("notional")), default=-F("notional"))
        desk.symbol_net = dict(
            open_positions.filter(symbol__in=capped_symbols)
            .values("symbol")
            .annotate(net=Sum(signed))
            .values_list("symbol", "net")
        )
    capped_exchanges = [e for e in exchanges if config.exchange_caps.get(e) is not None]
    if capped_exchanges:
        desk.exchange_exposure = dict(
            open_positions.filter(account__exchange__in=capped_exchanges)
            .values("account__exchange")
            .annotate(gross=Sum(Abs("notional")))
            .values_list("account__exchange", "gross")
        )
    if config.max_leverage is not None or config.daily_loss_limit is not None:
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
        for balance, upnl, day_realized, start_unrealized in totals:
            desk.equity += balance + upnl
            desk.daily_pnl += day_realized + upnl - start_unrealized
            desk.balances += 1
    return desk


# --- configuration, cached per process by the index version ------------------------------
_config_lock = threading.Lock()
_config_cache: dict = {}


def _frozen(values) -> frozenset | None:
    return None if values is None else frozenset(values)


def _config_build(version: int) -> ConfigView:
    config = GlobalConfig.objects.filter(pk=GlobalConfig.SINGLETON_PK).first()
    if config is None:
        from risk.services.config import global_config_get

        config = global_config_get()
    breakers = tuple(
        BreakerView(
            id=breaker.pk,
            name=breaker.name,
            description=breaker.description,
            condition_type=breaker.condition_type,
            threshold=breaker.threshold.normalize(),  # 1000, not 1000.000000000000, in summaries
            action=breaker.action,
            symbols=_frozen(breaker.symbols),
            exchanges=_frozen(breaker.exchanges),
            additional_params=breaker.additional_params or {},
            cooldown_seconds=breaker.cooldown_seconds,
        )
        for breaker in CircuitBreaker.objects.filter(enabled=True).order_by("name")
    )
    return ConfigView(
        version=version,
        max_total_exposure=config.max_total_exposure,
        max_leverage=config.max_leverage,
        max_drawdown_pct=config.max_drawdown_pct,
        daily_loss_limit=config.daily_loss_limit,
        max_margin_ratio=config.max_margin_ratio,
        dry_run=config.dry_run,
        alert_cooldown_seconds=config.alert_cooldown_seconds,
        max_price_age_seconds=config.max_price_age_seconds,
        symbol_caps={
            symbol: (size, leverage)
            for symbol, size, leverage in SymbolConfig.objects.values_list(
                "symbol", "max_position_size", "max_leverage"
            )
        },
        exchange_caps=dict(ExchangeConfig.objects.values_list("exchange", "max_exposure")),
        breakers=breakers,
    )


def config_view_get(*, fresh: bool = False) -> ConfigView:
    """Configuration and enabled breakers, rebuilt when `risk:index:version` moved (one
    Redis GET per call; the database only after a change). Inside a transaction that
    changed them (not yet published), pass `fresh=True`."""
    try:
        version = hooks.index_version()
    except Exception:  # Redis unreachable: read the database every time rather than trust a cache
        return _config_build(-1)
    with _config_lock:
        cached = _config_cache.get("view")
        if cached is not None and cached.version == version and not fresh:
            return cached
    view = _config_build(version)
    if not fresh:
        with _config_lock:
            _config_cache["view"] = view
    return view


def config_cache_clear() -> None:
    with _config_lock:
        _config_cache.clear()
