"""The exchange layer: one async interface over ccxt and the paper exchange.

    from accounts.exchanges import exchange_open

    async with exchange_open("binanceusdm", credentials=creds) as exchange:
        positions = await exchange.fetch_positions()

Only this package imports ccxt (lazily: importing `accounts.exchanges` costs nothing).
For an `ExchangeAccount`, `accounts.services.exchange_accounts.account_exchange(account)`
decrypts the credentials and opens the right implementation.
"""

import pkgutil
from functools import cache
from importlib.util import find_spec

from accounts.exchanges.base import (
    BUY,
    CANCELED,
    EXPIRED,
    FILLED,
    LONG,
    NOT_FILLED,
    ORDER_STATUSES,
    PARTIALLY_FILLED,
    REJECTED,
    SELL,
    SHORT,
    BalanceInfo,
    Credentials,
    Exchange,
    FundingPayment,
    Mark,
    OpenOrder,
    OrderBook,
    OrderResult,
    PositionInfo,
    Ticker,
    Trade,
)
from accounts.exchanges.errors import (
    ExchangeAuthError,
    ExchangeError,
    ExchangeNotSupported,
    ExchangeRateLimited,
    ExchangeUnavailable,
    MissingCredentials,
    OrderRejected,
    UnknownExchange,
    UnknownSymbol,
)
from accounts.exchanges.symbols import DERIVATIVES_VENUES, SymbolMap, normalize_symbol

PAPER = "paper"

__all__ = [
    "BUY",
    "CANCELED",
    "DERIVATIVES_VENUES",
    "EXPIRED",
    "FILLED",
    "LONG",
    "NOT_FILLED",
    "ORDER_STATUSES",
    "PAPER",
    "PARTIALLY_FILLED",
    "REJECTED",
    "SELL",
    "SHORT",
    "BalanceInfo",
    "Credentials",
    "Exchange",
    "ExchangeAuthError",
    "ExchangeError",
    "ExchangeNotSupported",
    "ExchangeRateLimited",
    "ExchangeUnavailable",
    "FundingPayment",
    "Mark",
    "MissingCredentials",
    "OpenOrder",
    "OrderBook",
    "OrderRejected",
    "OrderResult",
    "PositionInfo",
    "SymbolMap",
    "Ticker",
    "Trade",
    "UnknownExchange",
    "UnknownSymbol",
    "exchange_open",
    "is_known_exchange",
    "known_exchanges",
    "markets_cache_clear",
    "normalize_symbol",
]


def is_known_exchange(exchange_id: str) -> bool:
    """`paper`, or an exchange id ccxt ships (checked without importing ccxt)."""
    if exchange_id == PAPER:
        return True
    if not exchange_id or not exchange_id.isidentifier() or exchange_id.startswith("_"):
        return False
    if exchange_id in ("base", "abstract", "static_dependencies", "test", "pro"):
        return False
    try:
        return find_spec(f"ccxt.async_support.{exchange_id}") is not None
    except (ImportError, ValueError):
        return False


@cache
def known_exchanges() -> tuple[str, ...]:
    """Every id `is_known_exchange` accepts, sorted: `paper` and ccxt's exchanges."""
    package = find_spec("ccxt.async_support")
    names = {module.name for module in pkgutil.iter_modules(package.submodule_search_locations)}
    return tuple(sorted({PAPER} | {name for name in names if is_known_exchange(name)}))


def exchange_open(
    exchange_id: str,
    *,
    credentials: Credentials | None = None,
    testnet: bool = False,
    account_id: int | None = None,
) -> Exchange:
    """An `Exchange` for `exchange_id`; use it with `async with`.

    `account_id` names the paper account whose books the paper exchange reads and
    writes (market data needs none); ccxt venues use `credentials`.
    """
    if exchange_id == PAPER:
        from accounts.exchanges.paper import PaperExchange

        return PaperExchange(account_id=account_id)
    if not is_known_exchange(exchange_id):
        raise UnknownExchange(f"Unknown exchange {exchange_id!r}.")
    from accounts.exchanges import config
    from accounts.exchanges.ccxt_exchange import CcxtExchange

    return CcxtExchange(
        exchange_id, credentials=credentials, testnet=testnet, api_url=config.api_url_override(exchange_id)
    )


def markets_cache_clear() -> None:
    """Forget every loaded market set of this process (tests; a venue listing changes)."""
    import sys

    module = sys.modules.get("accounts.exchanges.ccxt_exchange")
    if module is not None:
        module.markets_cache.clear()
