"""The exchange interface over ccxt (async REST; ccxt.pro `watch_*` for streams).

The only module of ETRMS that imports ccxt. Every ccxt error is translated here into
`accounts.exchanges.errors`, with signatures and credential values scrubbed from the
message and the ccxt exception not chained (its text can hold signed URLs).
"""

import asyncio
import logging
import re
from collections.abc import Awaitable
from decimal import Decimal
from urllib.parse import urlsplit

import ccxt
from django.utils import timezone

from accounts.exchanges import config
from accounts.exchanges.base import (
    LONG,
    SHORT,
    BalanceInfo,
    Credentials,
    Exchange,
    Mark,
    OrderBook,
    PositionInfo,
    Ticker,
    Trade,
)
from accounts.exchanges.ccxt_fills import CcxtFills
from accounts.exchanges.ccxt_orders import CcxtOrders
from accounts.exchanges.ccxt_support import (
    assets,
    client_class,
    dec,
    dt,
    markets_cache,
    rewrite_urls,
)
from accounts.exchanges.errors import (
    ExchangeAuthError,
    ExchangeError,
    ExchangeNotSupported,
    ExchangeRateLimited,
    ExchangeUnavailable,
    OrderRejected,
    UnknownSymbol,
)
from accounts.exchanges.symbols import DERIVATIVES_VENUES, USD_QUOTES, SymbolMap

logger = logging.getLogger("accounts.exchanges")
# ccxt logs every request at DEBUG with its headers (the API key) and signed URLs:
# whatever LOG_LEVEL says, nothing below WARNING leaves ccxt's loggers.
logging.getLogger("ccxt").setLevel(logging.WARNING)

_CREDENTIAL_NAMES = {
    "api_key": "apiKey",
    "secret": "secret",
    "password": "password",
    "uid": "uid",
    "wallet_address": "walletAddress",
    "private_key": "privateKey",
}
_URL_ERROR_GROUPS = {"binanceusdm": "linear", "binancecoinm": "inverse", "binance": "spot"}
# Binance's depth endpoint accepts only these limits.
_BINANCE_DEPTHS = (5, 10, 20, 50, 100, 500, 1000)
_SIGNATURE = re.compile(r"(signature=)[^&\s\"']+", re.IGNORECASE)


class CcxtExchange(CcxtOrders, CcxtFills, Exchange):
    def __init__(
        self,
        exchange_id: str,
        *,
        credentials: Credentials | None = None,
        testnet: bool = False,
        api_url: str | None = None,
    ):
        self.exchange_id = exchange_id
        cls = client_class(exchange_id)
        options: dict = {}
        self._api_url = api_url
        if api_url:
            # load_markets would otherwise ask the venue's spot host for currencies.
            options["fetchCurrencies"] = False
        settings = {
            "enableRateLimit": True,
            "timeout": int(config.timeout_seconds() * 1000),
            "verbose": False,  # ccxt's verbose mode prints signed requests: never on.
            "options": options,
        }
        credentials = credentials or Credentials()
        for ours, theirs in _CREDENTIAL_NAMES.items():
            if getattr(credentials, ours):
                settings[theirs] = getattr(credentials, ours)
        self._secrets = credentials.secrets()
        self._client = cls(settings)
        self._testnet = testnet
        if testnet:
            try:
                if exchange_id in ("binance", "binanceusdm", "binancecoinm"):
                    # Binance retired the futures testnet; its demo trading replaces it.
                    self._client.enable_demo_trading(True)
                else:
                    self._client.set_sandbox_mode(True)
            except ccxt.BaseError:
                self._client = None
                raise ExchangeNotSupported(f"{exchange_id} has no testnet.") from None
        if api_url:
            base = urlsplit(api_url)
            self._client.urls["api"] = rewrite_urls(self._client.urls["api"], base)
            # ccxt chooses Binance's per-market error codes by the URL's host; on another
            # host, keep them by making them the venue's general ones.
            group = _URL_ERROR_GROUPS.get(exchange_id)
            exceptions = self._client.exceptions
            if group and isinstance(exceptions.get(group), dict):
                for kind in ("exact", "broad"):
                    exceptions[kind] = {**exceptions.get(kind, {}), **exceptions[group].get(kind, {})}
        self._symbol_map: SymbolMap | None = None
        self._watched: set[str] = set()

    def __repr__(self) -> str:
        return f"CcxtExchange({self.exchange_id!r}, testnet={self._testnet})"

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    # --- errors ----------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        text = _SIGNATURE.sub(r"\1[redacted]", text)
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text[:500]

    def _retry_after(self) -> float | None:
        headers = getattr(self._client, "last_response_headers", None) or {}
        try:
            value = headers.get("Retry-After") or headers.get("retry-after")
            return float(value) if value is not None else None
        except (TypeError, ValueError):
            return None

    def translate(self, exc: Exception) -> ExchangeError:
        message = self._scrub(str(exc)) or type(exc).__name__
        venue = self.exchange_id
        if isinstance(exc, (ccxt.RateLimitExceeded, ccxt.DDoSProtection)):
            return ExchangeRateLimited(message, exchange=venue, retry_after=self._retry_after())
        if isinstance(exc, ccxt.BadSymbol):
            return UnknownSymbol(message, exchange=venue)
        if isinstance(exc, ccxt.AuthenticationError):
            return ExchangeAuthError(message, exchange=venue)
        if isinstance(exc, (ccxt.InsufficientFunds, ccxt.InvalidOrder, ccxt.OperationRejected)):
            return OrderRejected(message, exchange=venue)
        if isinstance(exc, ccxt.NotSupported):
            return ExchangeNotSupported(message, exchange=venue)
        if isinstance(exc, (ccxt.NetworkError, asyncio.TimeoutError, OSError)):
            return ExchangeUnavailable(message, exchange=venue)
        if isinstance(exc, ccxt.OperationFailed):
            return ExchangeUnavailable(message, exchange=venue)
        return ExchangeError(message, exchange=venue)

    async def _call(self, awaitable: Awaitable):
        try:
            return await awaitable
        except ExchangeError:
            raise
        except (TimeoutError, ccxt.BaseError, OSError) as exc:
            error = self.translate(exc)
        # Raised outside the except block: the ccxt exception (whose text may hold a
        # signed URL) is neither chained nor logged.
        logger.warning("%s call failed: %s", self.exchange_id, error.detail)
        raise error

    # --- markets ---------------------------------------------------------------------
    async def load_markets(self) -> SymbolMap:
        if self._symbol_map is not None:
            return self._symbol_map
        key = (self.exchange_id, self._testnet, self._api_url)
        cached = markets_cache.get(key)
        if cached is not None:
            _, markets, currencies, symbol_map = cached
            self._client.set_markets(markets, currencies)
        else:
            await self._call(self._client.load_markets())
            symbol_map = SymbolMap(self.exchange_id, self._client.markets)
            markets_cache.put(key, self._client.markets, self._client.currencies, symbol_map)
        self._symbol_map = symbol_map
        return symbol_map

    async def _unified(self, symbol: str) -> str:
        return (await self.load_markets()).unified(symbol)

    def _etrms(self, unified: str) -> str:
        return self._symbol_map.etrms(unified) if self._symbol_map else unified

    # --- account ---------------------------------------------------------------------
    async def fetch_balance(self, positions: list[PositionInfo] | None = None) -> BalanceInfo:
        """With `positions` already fetched in this session, no second positions call is
        made for venues whose balance excludes unrealized PnL details."""
        symbol_map = await self.load_markets()
        raw = await self._call(self._client.fetch_balance())
        info = raw.get("info") if isinstance(raw.get("info"), dict) else {}
        if "totalWalletBalance" in info and "totalMarginBalance" in info:
            # Binance USD-M: the account's own USD totals across its margin assets.
            return BalanceInfo(
                balance=dec(info["totalWalletBalance"]) or Decimal(0),
                equity=dec(info["totalMarginBalance"]) or Decimal(0),
                available=dec(info.get("availableBalance")) or Decimal(0),
                margin_used=dec(info.get("totalInitialMargin")) or Decimal(0),
                unrealized_pnl=dec(info.get("totalUnrealizedProfit")) or Decimal(0),
                maintenance_margin=dec(info.get("totalMaintMargin")),
                assets=assets(raw),
            )
        equity = available = used = Decimal(0)
        for asset, total in (raw.get("total") or {}).items():
            total = dec(total) or Decimal(0)
            if not total:
                continue
            rate = await self._usd_rate(asset, symbol_map)
            if rate is None:
                logger.info("%s: no USD price for %s; left out of the balance", self.exchange_id, asset)
                continue
            equity += total * rate
            available += (dec((raw.get("free") or {}).get(asset)) or Decimal(0)) * rate
            used += (dec((raw.get("used") or {}).get(asset)) or Decimal(0)) * rate
        if self.exchange_id in DERIVATIVES_VENUES:
            if positions is None:
                positions = await self.fetch_positions()
            unrealized = sum((position.unrealized_pnl for position in positions), Decimal(0))
            maintenance = sum((position.maintenance_margin or Decimal(0) for position in positions), Decimal(0))
            return BalanceInfo(
                balance=equity - unrealized,
                equity=equity,
                available=available,
                margin_used=used,
                unrealized_pnl=unrealized,
                maintenance_margin=maintenance,
                assets=assets(raw),
            )
        return BalanceInfo(
            balance=equity,
            equity=equity,
            available=available,
            margin_used=used,
            unrealized_pnl=Decimal(0),
            maintenance_margin=None,
            assets=assets(raw),
        )

    async def _usd_rate(self, asset: str, symbol_map: SymbolMap) -> Decimal | None:
        if asset.upper() in USD_QUOTES:
            return Decimal(1)
        symbol = f"{asset.upper()}USDT"
        if not symbol_map.has(symbol):
            return None
        return (await self.fetch_ticker(symbol)).last

    async def fetch_positions(self, symbols: list[str] | None = None) -> list[PositionInfo]:
        symbol_map = await self.load_markets()
        if not self._client.has.get("fetchPositions"):
            return []
        unified = symbol_map.unified_many(symbols) if symbols else None
        raw_positions = await self._call(self._client.fetch_positions(unified))
        result = []
        for raw in raw_positions:
            contracts = dec(raw.get("contracts"))
            if not contracts or not symbol_map.lists_unified(raw.get("symbol")):
                continue
            size = abs(contracts) * (dec(raw.get("contractSize")) or Decimal(1))
            side = raw.get("side")
            if side not in (LONG, SHORT):
                side = LONG if contracts > 0 else SHORT
            entry = dec(raw.get("entryPrice")) or Decimal(0)
            mark = dec(raw.get("markPrice"))
            notional = abs(dec(raw.get("notional")) or (size * (mark or entry)))
            direction = 1 if side == LONG else -1
            unrealized = dec(raw.get("unrealizedPnl"))
            if unrealized is None:
                unrealized = (mark - entry) * size * direction if mark is not None else Decimal(0)
            market = self._client.markets.get(raw["symbol"]) or {}
            initial = dec(raw.get("initialMargin"))
            leverage = dec(raw.get("leverage"))
            if leverage is None and initial:
                leverage = (notional / initial).quantize(Decimal("0.01"))
            result.append(
                PositionInfo(
                    symbol=symbol_map.etrms(raw["symbol"]),
                    side=side,
                    size=size,
                    entry_price=entry,
                    mark_price=mark,
                    notional=notional,
                    unrealized_pnl=unrealized,
                    leverage=leverage,
                    liquidation_price=dec(raw.get("liquidationPrice")),
                    margin_ratio=dec(raw.get("marginRatio")),
                    maintenance_margin=dec(raw.get("maintenanceMargin")),
                    initial_margin=initial,
                    hedged=bool(raw.get("hedged")),
                    timestamp=dt(raw.get("timestamp")) if raw.get("timestamp") else None,
                    # ccxt's position timestamp is the venue's last update (Binance's
                    # `updateTime`), not the opening: `opened_at` stays unknown.
                    quote=str(market.get("settle") or market.get("quote") or "USDT").upper(),
                )
            )
        return result

    # --- market data -----------------------------------------------------------------
    def _ticker(self, raw: dict, symbol: str) -> Ticker:
        last = dec(raw.get("last")) or dec(raw.get("close"))
        if last is None:
            raise ExchangeError(f"No price for {symbol}.", exchange=self.exchange_id)
        return Ticker(
            symbol=symbol,
            last=last,
            bid=dec(raw.get("bid")),
            ask=dec(raw.get("ask")),
            high=dec(raw.get("high")),
            low=dec(raw.get("low")),
            open=dec(raw.get("open")),
            volume=dec(raw.get("baseVolume")),
            quote_volume=dec(raw.get("quoteVolume")),
            change_pct=dec(raw.get("percentage")),
            timestamp=dt(raw.get("timestamp")),
        )

    async def fetch_ticker(self, symbol: str) -> Ticker:
        unified = await self._unified(symbol)
        raw = await self._call(self._client.fetch_ticker(unified))
        return self._ticker(raw, self._etrms(unified))

    @property
    def has_mark_prices(self) -> bool:
        return bool(self._client.has.get("fetchMarkPrices"))

    async def fetch_marks(self, symbols: list[str]) -> dict[str, Mark]:
        """One call for every symbol where the venue allows it (mark prices, else
        tickers); each mark is stamped with the moment the answer arrived."""
        if not symbols:
            return {}
        symbol_map = await self.load_markets()
        unified = {symbol_map.unified(symbol): symbol for symbol in symbols}
        if self._client.has.get("fetchMarkPrices"):
            raw, key = await self._call(self._client.fetch_mark_prices(list(unified))), "markPrice"
        elif self._client.has.get("fetchTickers"):
            raw, key = await self._call(self._client.fetch_tickers(list(unified))), "last"
        else:
            return await super().fetch_marks(symbols)
        received_at = timezone.now()
        marks = {}
        for name, symbol in unified.items():
            ticker = raw.get(name) or {}
            price = dec(ticker.get(key)) or dec(ticker.get("last"))
            if price is not None:
                marks[symbol] = Mark(symbol=symbol, price=price, received_at=received_at)
        return marks

    async def fetch_order_book(self, symbol: str, limit: int = 20) -> OrderBook:
        unified = await self._unified(symbol)
        venue_limit = limit
        if self.exchange_id.startswith("binance"):
            venue_limit = next((depth for depth in _BINANCE_DEPTHS if depth >= limit), _BINANCE_DEPTHS[-1])
        raw = await self._call(self._client.fetch_order_book(unified, venue_limit))
        return OrderBook(
            symbol=self._etrms(unified),
            bids=[(dec(level[0]), dec(level[1])) for level in raw.get("bids", [])[:limit]],
            asks=[(dec(level[0]), dec(level[1])) for level in raw.get("asks", [])[:limit]],
            timestamp=dt(raw.get("timestamp")),
        )

    # --- streams ---------------------------------------------------------------------
    async def _poll_wait(self, key: str) -> None:
        if key in self._watched:
            await asyncio.sleep(config.poll_seconds())
        self._watched.add(key)

    async def watch_ticker(self, symbol: str) -> Ticker:
        unified = await self._unified(symbol)
        if self._client.has.get("watchTicker") and hasattr(self._client, "watch_ticker"):
            raw = await self._call(self._client.watch_ticker(unified))
            return self._ticker(raw, self._etrms(unified))
        await self._poll_wait(f"ticker:{unified}")
        return await self.fetch_ticker(symbol)

    async def watch_trades(self, symbol: str) -> list[Trade]:
        unified = await self._unified(symbol)
        if self._client.has.get("watchTrades") and hasattr(self._client, "watch_trades"):
            raw = await self._call(self._client.watch_trades(unified))
            return [self._trade(item, self._etrms(unified)) for item in raw]
        await self._poll_wait(f"trades:{unified}")
        return await self.fetch_trades(symbol)
