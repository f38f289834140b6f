"""What evaluation reads, as plain in-memory views, and the loaders that fill them (the
books' positions and accounts come from `accounts.selectors.books`).

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
from decimal import Decimal

from django.db.models import CharField
from django.db.models.functions import Cast

from accounts.selectors.books import (
    accounts_load,
    desk_equity_daily_pnl,
    desk_exchange_exposure,
    desk_gross_exposure,
    desk_symbol_net,
    positions_load,
)
from risk.constants import DEFAULT_VOLATILITY_WINDOW_SECONDS, ConditionType
from risk.models import CircuitBreaker, ExchangeConfig, GlobalConfig, RiskLimit, SymbolConfig
from risk.services import hooks

ZERO = Decimal(0)


# --- views ------------------------------------------------------------------------------
@dataclass(slots=True, frozen=True)
class LimitView:
    id: object
    user_id: object
    symbol: str | None
    limit_type: str
    threshold: Decimal
    warning: Decimal | None
    equity_peaks: dict
    ladder: tuple = ()  # issue 15: ((at_pct, action), ...) with at_pct increasing


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


def book_load(*, user_id) -> Book:
    """One user's book: 3 queries (accounts with balances, today's rows, positions)."""
    accounts = accounts_load(user_id=user_id)
    return Book(user_id=user_id, positions=positions_load(accounts=accounts), accounts=accounts)


def limits_load(**filters) -> list[LimitView]:
    """Enabled limits (decimals and JSON as text, parsed here; drawdown peaks only where kept)."""
    rows = (
        RiskLimit.objects.filter(enabled=True, **filters)
        .order_by("-created_at", "id")  # newest first (RiskLimit's order), a tie broken the same way everywhere
        .annotate(**{f"t_{name}": Cast(name, output_field=CharField()) for name in LIMIT_TEXT})
        .values_list("id", "user_id", "symbol", "limit_type", *(f"t_{name}" for name in LIMIT_TEXT))
    )
    return [limit_view(*row) for row in rows]


LIMIT_TEXT = ("threshold_value", "warning_value", "equity_peaks", "ladder")  # read as text


def limit_view(limit_id, user_id, symbol, limit_type, threshold, warning, peaks, ladder) -> LimitView:
    """A LimitView from its columns, LIMIT_TEXT's as database text."""
    return LimitView(
        id=limit_id,
        user_id=user_id,
        symbol=symbol,
        limit_type=limit_type,
        threshold=Decimal(threshold),
        warning=None if warning is None else Decimal(warning),
        equity_peaks=json.loads(peaks) if limit_type == "drawdown" and peaks else {},
        ladder=_ladder(ladder),
    )


def _ladder(text) -> tuple:
    """A limit's ladder from its JSON text: ((at_pct, action), ...); most limits have none."""
    if not text or text == "[]":
        return ()
    return tuple((Decimal(step["at_pct"]), step["do"]) for step in json.loads(text) or ())


def desk_totals_load(*, config: "ConfigView", symbols: set, exchanges: set) -> DeskTotals:
    """Desk-wide aggregates in SQL, only those the configured caps need for this book:
    the desk's total exposure (and equity, daily PnL) for the global caps, the net of the
    capped `symbols` and the exposure on the capped `exchanges` the user trades. At most
    four single-pass aggregate queries, whatever the desk's size."""
    desk = DeskTotals()
    if config.max_total_exposure is not None or config.max_leverage is not None:
        desk.total_exposure = desk_gross_exposure()
    capped_symbols = [s for s in symbols if config.symbol_caps.get(s, (None, None))[0] is not None]
    if capped_symbols:
        desk.symbol_net = desk_symbol_net(symbols=capped_symbols)
    capped_exchanges = [e for e in exchanges if config.exchange_caps.get(e) is not None]
    if capped_exchanges:
        desk.exchange_exposure = desk_exchange_exposure(exchanges=capped_exchanges)
    if config.max_leverage is not None or config.daily_loss_limit is not None:
        desk.equity, desk.daily_pnl, desk.balances = desk_equity_daily_pnl()
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


def config_view_cached() -> ConfigView | None:
    """The view `config_view_get` last cached, unchecked (the caller checks its version)."""
    with _config_lock:
        return _config_cache.get("view")


def config_cache_clear() -> None:
    with _config_lock:
        _config_cache.clear()
