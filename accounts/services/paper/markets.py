"""Paper markets and prices: the built-in markets, `PaperMarket` rows, pinned prices."""

import time
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction

from accounts.exchanges import config
from accounts.exchanges.errors import OrderRejected, UnknownSymbol
from accounts.exchanges.paper_prices import DEFAULT_MARKETS, PaperMarketSpec, quantize_price, walk_price
from accounts.exchanges.symbols import normalize_symbol
from accounts.models import PaperMarket


# --- markets and prices ---------------------------------------------------------------
@dataclass(frozen=True)
class PaperQuote:
    spec: PaperMarketSpec
    override: Decimal | None

    def price_at(self, at: float) -> Decimal:
        if self.override is not None:
            return self.override
        return walk_price(self.spec, at=at, seed=config.paper_seed(), tick_seconds=config.paper_tick_seconds())


def paper_markets() -> dict[str, PaperQuote]:
    """Every paper market: the built-in ones, then the `PaperMarket` rows (one query)."""
    quotes = {symbol: PaperQuote(spec, None) for symbol, spec in DEFAULT_MARKETS.items()}
    for row in PaperMarket.objects.all():
        spec = PaperMarketSpec(
            symbol=row.symbol,
            base=row.base,
            quote=row.quote,
            base_price=row.base_price,
            volatility=row.volatility,
            tick_size=row.tick_size,
            step_size=row.step_size,
            maintenance_margin_rate=row.maintenance_margin_rate,
        )
        override = quantize_price(row.price_override, row.tick_size) if row.price_override is not None else None
        quotes[row.symbol] = PaperQuote(spec, override)
    return quotes


def paper_quote(symbol: str) -> PaperQuote:
    symbol = normalize_symbol(symbol)
    quote = paper_markets().get(symbol)
    if quote is None:
        raise UnknownSymbol(f"paper does not list {symbol}.")
    return quote


def paper_price(symbol: str, *, at: float | None = None) -> Decimal:
    """The paper mark price of `symbol` now (or at unix time `at`)."""
    return paper_quote(symbol).price_at(time.time() if at is None else at)


@transaction.atomic
def paper_price_set(*, symbol: str, price: Decimal | None) -> PaperMarket:
    """Pin `symbol`'s paper price (None: back to the random walk). Creates the market
    row from the built-in definition when needed."""
    symbol = normalize_symbol(symbol)
    row = PaperMarket.objects.select_for_update().filter(symbol=symbol).first()
    if row is None:
        spec = DEFAULT_MARKETS.get(symbol)
        if spec is None:
            raise UnknownSymbol(f"paper does not list {symbol}.")
        row = PaperMarket(
            symbol=symbol,
            base=spec.base,
            quote=spec.quote,
            base_price=spec.base_price,
            volatility=spec.volatility,
            tick_size=spec.tick_size,
            step_size=spec.step_size,
            maintenance_margin_rate=spec.maintenance_margin_rate,
        )
    if price is not None and price <= 0:
        raise OrderRejected("A paper price must be positive.")
    row.price_override = price
    row.save()
    return row


@transaction.atomic
def paper_market_upsert(
    *,
    symbol: str,
    base_price: Decimal,
    volatility: float = 0.6,
    tick_size: Decimal = Decimal("0.01"),
    step_size: Decimal = Decimal("0.001"),
    quote: str = "USDT",
) -> PaperMarket:
    """List a new paper market (or redefine one). `symbol` must end with `quote`."""
    symbol = normalize_symbol(symbol)
    if not symbol.endswith(quote) or symbol == quote:
        raise UnknownSymbol(f"{symbol} is not a {quote}-quoted symbol.")
    row, _ = PaperMarket.objects.update_or_create(
        symbol=symbol,
        defaults={
            "base": symbol[: -len(quote)],
            "quote": quote,
            "base_price": base_price,
            "volatility": volatility,
            "tick_size": tick_size,
            "step_size": step_size,
        },
    )
    return row
