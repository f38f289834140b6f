"""The market-data caches: read-through for the API, warm-up for the job, writes for the feed.

Entries (see `realtime.cache`), both keyed `<exchange>:<SYMBOL>`:
- price: `{"symbol", "exchange", "price": "<decimal>", "timestamp"}`;
- market_data: `{"symbol", "exchange", "price", "order_book": {"bids", "asks"} | null,
  "recent_trades": [{"price", "quantity", "time"}], "timestamp", "cached_at"}`.
They are stored as the API shows them, so a hit costs no formatting.

A miss goes through the exchange interface (`accounts.exchanges`) once however many
readers wait (`single_flight`); an unknown symbol is decided from the loaded markets
before any market-data call.
"""

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

from asgiref.sync import async_to_sync
from redis import RedisError

from accounts.exchanges import (
    PAPER,
    ExchangeError,
    ExchangeRateLimited,
    ExchangeUnavailable,
    OrderBook,
    Ticker,
    Trade,
    UnknownExchange,
    exchange_open,
    is_known_exchange,
    normalize_symbol,
)
from etrms.formatting import decimal_str, iso_utc
from realtime import cache
from realtime.cache import MARKET_DATA, PRICE
from realtime.services.single_flight import single_flight

BOOK_DEPTH = 10
RECENT_TRADES = 20


# --- parameters ----------------------------------------------------------------------------
def default_exchange() -> str:
    """SPEC §8: the first monitored exchange, else paper."""
    from accounts.selectors import monitoring_state_get

    state = monitoring_state_get()
    if state.running and state.exchanges:
        return state.exchanges[0]
    return PAPER


def exchange_resolve(exchange: str | None) -> str:
    if not exchange:
        return default_exchange()
    exchange = exchange.strip().lower()
    if not is_known_exchange(exchange):
        raise UnknownExchange(f"Unknown exchange {exchange!r}.")
    return exchange


# --- entry formats -------------------------------------------------------------------------
def price_entry(*, exchange: str, symbol: str, price: Decimal, at: datetime) -> dict:
    return {"symbol": symbol, "exchange": exchange, "price": decimal_str(price), "timestamp": iso_utc(at)}


def _level(level: tuple[Decimal, Decimal]) -> list[float]:
    # Phase 4 shows order-book levels as JSON numbers ([[43250.00, 1.5], ...]).
    return [float(level[0]), float(level[1])]


def book_entry(book: OrderBook) -> dict:
    return {"bids": [_level(level) for level in book.bids], "asks": [_level(level) for level in book.asks]}


def trades_entry(trades: list[Trade]) -> list[dict]:
    """Newest first, at most RECENT_TRADES."""
    recent = sorted(trades, key=lambda trade: trade.timestamp, reverse=True)[:RECENT_TRADES]
    return [
        {"price": decimal_str(trade.price), "quantity": decimal_str(trade.amount), "time": iso_utc(trade.timestamp)}
        for trade in recent
    ]


def market_data_entry(
    *, exchange: str, ticker: Ticker, order_book: OrderBook | dict | None, trades: list[Trade] | list[dict]
) -> dict:
    book = book_entry(order_book) if isinstance(order_book, OrderBook) else order_book
    recent = trades_entry(trades) if trades and isinstance(trades[0], Trade) else list(trades or [])
    return {
        "symbol": ticker.symbol,
        "exchange": exchange,
        "price": decimal_str(ticker.last),
        "order_book": book,
        "recent_trades": recent,
        "timestamp": iso_utc(ticker.timestamp),
        "cached_at": iso_utc(datetime.now(UTC)),
    }


# --- exchange reads --------------------------------------------------------------------------
async def _fetch_ticker(exchange_id: str, symbol: str) -> Ticker:
    async with exchange_open(exchange_id) as exchange:
        canonical = await exchange.check_symbol(symbol)  # 404 from the markets, no call
        return await exchange.fetch_ticker(canonical)


async def _fetch_market(exchange, symbol: str) -> tuple[Ticker, OrderBook, list[Trade]]:
    canonical = await exchange.check_symbol(symbol)
    return await asyncio.gather(
        exchange.fetch_ticker(canonical),
        exchange.fetch_order_book(canonical, BOOK_DEPTH),
        exchange.fetch_trades(canonical, RECENT_TRADES),
    )


async def _fetch_market_data(exchange_id: str, symbol: str) -> tuple[Ticker, OrderBook, list[Trade]]:
    async with exchange_open(exchange_id) as exchange:
        return await _fetch_market(exchange, symbol)


def _store(*, exchange: str, symbol: str, ticker: Ticker, order_book, trades) -> dict:
    """Write both caches for `symbol` (the requested name: what readers look up)."""
    entry = market_data_entry(exchange=exchange, ticker=ticker, order_book=order_book, trades=trades)
    price = price_entry(exchange=exchange, symbol=ticker.symbol, price=ticker.last, at=ticker.timestamp)
    cache.cache_put(cache_type=MARKET_DATA, exchange=exchange, symbol=symbol, value=entry)
    cache.cache_put(cache_type=PRICE, exchange=exchange, symbol=symbol, value=price)
    return entry


# --- read-through (the API) -----------------------------------------------------------------
def _read_through(*, cache_type: str, exchange: str, symbol: str, fetch) -> dict:
    try:
        value = cache.cache_get(cache_type=cache_type, exchange=exchange, symbol=symbol)
        if value is not None:
            return {**value, "cached": True}
        value, fetched = single_flight(
            key=f"{cache_type}:{exchange}:{symbol}",
            peek=lambda: cache.cache_peek(cache_type=cache_type, exchange=exchange, symbol=symbol),
            fetch=fetch,
        )
    except RedisError as exc:
        raise cache.unavailable(exc) from None
    # The reader that called the exchange answers cached=false; readers that waited for
    # it were served from the cache.
    return {**value, "cached": not fetched}


def price_get(*, symbol: str, exchange: str | None = None) -> dict:
    """`GET /cache/price/{symbol}`: `{symbol, exchange, price, timestamp, cached}`."""
    exchange, symbol = exchange_resolve(exchange), normalize_symbol(symbol)

    def fetch() -> dict:
        ticker = async_to_sync(_fetch_ticker)(exchange, symbol)
        value = price_entry(exchange=exchange, symbol=ticker.symbol, price=ticker.last, at=ticker.timestamp)
        cache.cache_put(cache_type=PRICE, exchange=exchange, symbol=symbol, value=value)
        return value

    return _read_through(cache_type=PRICE, exchange=exchange, symbol=symbol, fetch=fetch)


def market_data_get(*, symbol: str, exchange: str | None = None) -> dict:
    """`GET /cache/market-data/{symbol}`: price, order book, recent trades, cached_at."""
    exchange, symbol = exchange_resolve(exchange), normalize_symbol(symbol)

    def fetch() -> dict:
        ticker, book, trades = async_to_sync(_fetch_market_data)(exchange, symbol)
        return _store(exchange=exchange, symbol=symbol, ticker=ticker, order_book=book, trades=trades)

    return _read_through(cache_type=MARKET_DATA, exchange=exchange, symbol=symbol, fetch=fetch)


# --- warm-up (the refresh_market_data job) ----------------------------------------------------
async def _refresh(exchange_id: str, symbols: list[str]) -> dict:
    refreshed, failed, retryable = [], {}, None
    async with exchange_open(exchange_id) as exchange:
        for symbol in symbols:
            try:
                ticker, book, trades = await _fetch_market(exchange, symbol)
            except ExchangeError as exc:
                failed[symbol] = str(exc.detail)
                if isinstance(exc, (ExchangeUnavailable, ExchangeRateLimited)):
                    retryable = retryable or exc
                continue
            refreshed.append((symbol, ticker, book, trades))
    return {"refreshed": refreshed, "failed": failed, "retryable": retryable}


def market_data_refresh(*, exchange: str | None, symbols: list[str]) -> dict:
    """Fetch and cache (market_data and price) each symbol, whatever is cached. Unknown
    symbols are reported; an unavailable or throttling venue fails the job (it retries)
    after the symbols that worked were cached."""
    exchange = exchange_resolve(exchange)
    names = list(dict.fromkeys(normalize_symbol(symbol) for symbol in symbols))
    outcome = async_to_sync(_refresh)(exchange, names)
    for symbol, ticker, book, trades in outcome["refreshed"]:
        _store(exchange=exchange, symbol=symbol, ticker=ticker, order_book=book, trades=trades)
    if outcome["retryable"] is not None:
        raise outcome["retryable"]
    return {
        "exchange": exchange,
        "refreshed": [item[0] for item in outcome["refreshed"]],
        "failed": outcome["failed"],
    }


# --- writes from the feed ----------------------------------------------------------------------
def prices_put_many(*, exchange: str, prices: dict[str, tuple[Decimal, datetime]]) -> None:
    """Many ticks of one venue in one round trip (a conflated batch): {symbol: (price, at)}."""
    entries = {
        cache.symbol_key(exchange=exchange, symbol=symbol): price_entry(
            exchange=exchange, symbol=symbol, price=price, at=at
        )
        for symbol, (price, at) in prices.items()
    }
    cache.cache_for(PRICE).set_many(entries)


def market_caches_put(*, exchange: str, tickers: dict, trades: dict) -> None:
    """The feed's conflated batch of one venue: `tickers` {symbol: Ticker} (the latest of
    each) and `trades` {symbol: [Trade], newest last}. The price cache and the
    market-data snapshots (the cached order book kept, the feed's recent trades) in
    three round trips, whatever the number of symbols."""
    if not tickers:
        return
    prices_put_many(exchange=exchange, prices={s: (t.last, t.timestamp) for s, t in tickers.items()})
    market_data = cache.cache_for(MARKET_DATA)
    keys = {cache.symbol_key(exchange=exchange, symbol=symbol): symbol for symbol in tickers}
    current = market_data.peek_many(list(keys))
    entries = {}
    for key, symbol in keys.items():
        cached = current.get(key) or {}
        recent = trades.get(symbol)
        entries[key] = market_data_entry(
            exchange=exchange,
            ticker=tickers[symbol],
            order_book=cached.get("order_book"),
            trades=recent or cached.get("recent_trades", []),
        )
    market_data.set_many(entries)
