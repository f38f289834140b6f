"""The exchange interface over ccxt (async REST; ccxt.pro `watch_*` for streams).

The only module of ETRMS that imports ccxt. Every ccxt error is translated here into
`accounts.exchanges.errors`, with signatures and credential values scrubbed from the
message and the ccxt exception not chained (its text can hold signed URLs).
"""

import asyncio
import logging
import re
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit, urlunsplit

import ccxt
import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro

from accounts.exchanges import config
from accounts.exchanges.base import (
    LONG,
    SHORT,
    BalanceInfo,
    Credentials,
    Exchange,
    FundingPayment,
    Mark,
    OrderBook,
    PositionInfo,
    Ticker,
    Trade,
)
from accounts.exchanges.ccxt_orders import CcxtOrders
from accounts.exchanges.errors import (
    ExchangeAuthError,
    ExchangeError,
    ExchangeNotSupported,
    ExchangeRateLimited,
    ExchangeUnavailable,
    OrderRejected,
    UnknownExchange,
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


class _MarketsCache:
    """Loaded markets per process and venue (and host), so a new client costs no call."""

    def __init__(self):
        self._entries: dict[tuple, tuple[float, dict, dict | None, SymbolMap]] = {}

    def get(self, key: tuple):
        entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[0] > config.markets_ttl_seconds():
            return None
        return entry

    def put(self, key: tuple, markets: dict, currencies: dict | None, symbol_map: SymbolMap) -> None:
        self._entries[key] = (time.monotonic(), markets, currencies, symbol_map)

    def clear(self) -> None:
        self._entries.clear()


markets_cache = _MarketsCache()


def client_class(exchange_id: str):
    """ccxt.pro's class where the venue streams, else ccxt's async REST class."""
    cls = getattr(ccxt_pro, exchange_id, None) if exchange_id in ccxt_pro.exchanges else None
    if cls is None and exchange_id in ccxt.exchanges:
        cls = getattr(ccxt_async, exchange_id, None)
    if cls is None:
        raise UnknownExchange(f"Unknown exchange {exchange_id!r}.")
    return cls


def _rewrite(value, base):
    """Point every URL of a ccxt `urls['api']` tree at `base` (keeping the paths)."""
    if isinstance(value, dict):
        return {key: _rewrite(item, base) for key, item in value.items()}
    if isinstance(value, str) and "://" in value:
        parts = urlsplit(value)
        scheme = base.scheme
        if parts.scheme in ("ws", "wss"):
            scheme = "wss" if base.scheme == "https" else "ws"
        return urlunsplit((scheme, base.netloc, parts.path, parts.query, parts.fragment))
    return value


def _dec(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None


def _dt(ms) -> datetime:
    if ms is None:
        return datetime.now(UTC)
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


class CcxtExchange(CcxtOrders, Exchange):
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
            self._client.urls["api"] = _rewrite(self._client.urls["api"], base)
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
                balance=_dec(info["totalWalletBalance"]) or Decimal(0),
                equity=_dec(info["totalMarginBalance"]) or Decimal(0),
                available=_dec(info.get("availableBalance")) or Decimal(0),
                margin_used=_dec(info.get("totalInitialMargin")) or Decimal(0),
                unrealized_pnl=_dec(info.get("totalUnrealizedProfit")) or Decimal(0),
                maintenance_margin=_dec(info.get("totalMaintMargin")),
                assets=_assets(raw),
            )
        equity = available = used = Decimal(0)
        for asset, total in (raw.get("total") or {}).items():
            total = _dec(total) or Decimal(0)
            if not total:
                continue
            rate = await self._usd_rate(asset, symbol_map)
            if rate is None:
                logger.info("%s: no USD price for %s; left out of the balance", self.exchange_id, asset)
                continue
            equity += total * rate
            available += (_dec((raw.get("free") or {}).get(asset)) or Decimal(0)) * rate
            used += (_dec((raw.get("used") or {}).get(asset)) or Decimal(0)) * rate
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
                assets=_assets(raw),
            )
        return BalanceInfo(
            balance=equity,
            equity=equity,
            available=available,
            margin_used=used,
            unrealized_pnl=Decimal(0),
            maintenance_margin=None,
            assets=_assets(raw),
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
            contracts = _dec(raw.get("contracts"))
            if not contracts or not symbol_map.lists_unified(raw.get("symbol")):
                continue
            size = abs(contracts) * (_dec(raw.get("contractSize")) or Decimal(1))
            side = raw.get("side")
            if side not in (LONG, SHORT):
                side = LONG if contracts > 0 else SHORT
            entry = _dec(raw.get("entryPrice")) or Decimal(0)
            mark = _dec(raw.get("markPrice"))
            notional = abs(_dec(raw.get("notional")) or (size * (mark or entry)))
            direction = 1 if side == LONG else -1
            unrealized = _dec(raw.get("unrealizedPnl"))
            if unrealized is None:
                unrealized = (mark - entry) * size * direction if mark is not None else Decimal(0)
            market = self._client.markets.get(raw["symbol"]) or {}
            initial = _dec(raw.get("initialMargin"))
            leverage = _dec(raw.get("leverage"))
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
                    liquidation_price=_dec(raw.get("liquidationPrice")),
                    margin_ratio=_dec(raw.get("marginRatio")),
                    maintenance_margin=_dec(raw.get("maintenanceMargin")),
                    initial_margin=initial,
                    hedged=bool(raw.get("hedged")),
                    timestamp=_dt(raw.get("timestamp")) if raw.get("timestamp") else None,
                    # ccxt's position timestamp is the venue's last update (Binance's
                    # `updateTime`), not the opening: `opened_at` stays unknown.
                    quote=str(market.get("settle") or market.get("quote") or "USDT").upper(),
                )
            )
        return result

    # --- market data -----------------------------------------------------------------
    def _ticker(self, raw: dict, symbol: str) -> Ticker:
        last = _dec(raw.get("last")) or _dec(raw.get("close"))
        if last is None:
            raise ExchangeError(f"No price for {symbol}.", exchange=self.exchange_id)
        return Ticker(
            symbol=symbol,
            last=last,
            bid=_dec(raw.get("bid")),
            ask=_dec(raw.get("ask")),
            high=_dec(raw.get("high")),
            low=_dec(raw.get("low")),
            open=_dec(raw.get("open")),
            volume=_dec(raw.get("baseVolume")),
            quote_volume=_dec(raw.get("quoteVolume")),
            change_pct=_dec(raw.get("percentage")),
            timestamp=_dt(raw.get("timestamp")),
        )

    async def fetch_ticker(self, symbol: str) -> Ticker:
        unified = await self._unified(symbol)
        raw = await self._call(self._client.fetch_ticker(unified))
        return self._ticker(raw, self._etrms(unified))

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
        received_at = datetime.now(UTC)
        marks = {}
        for name, symbol in unified.items():
            ticker = raw.get(name) or {}
            price = _dec(ticker.get(key)) or _dec(ticker.get("last"))
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
            bids=[(_dec(level[0]), _dec(level[1])) for level in raw.get("bids", [])[:limit]],
            asks=[(_dec(level[0]), _dec(level[1])) for level in raw.get("asks", [])[:limit]],
            timestamp=_dt(raw.get("timestamp")),
        )

    def _trade(self, raw: dict, symbol: str, rates: dict[str, Decimal | None] | None = None) -> Trade:
        """`rates`: USD price of each non-USD fee currency (None: no price known; such a
        fee is left out of `fee` and named in `fee_unconverted`)."""
        info = raw.get("info") if isinstance(raw.get("info"), dict) else {}
        fee = Decimal(0)
        unconverted = []
        for item in _fees(raw):
            currency, cost = _fee_currency(item), _dec(item.get("cost")) or Decimal(0)
            rate = Decimal(1) if currency in USD_QUOTES else (rates or {}).get(currency)
            if rate is None:
                if cost:
                    unconverted.append(f"{cost} {currency}")
                continue
            fee += cost * rate
        position_side = str(info.get("positionSide") or "").lower()
        return Trade(
            symbol=symbol,
            id=str(raw.get("id")),
            price=_dec(raw.get("price")),
            amount=_dec(raw.get("amount")),
            side=raw.get("side"),
            timestamp=_dt(raw.get("timestamp")),
            order_id=raw.get("order"),
            fee=fee,
            realized_pnl=_dec(info.get("realizedPnl")),
            position_side=position_side if position_side in (LONG, SHORT) else None,
            fee_unconverted=", ".join(unconverted),
        )

    async def fetch_trades(self, symbol: str, limit: int = 50) -> list[Trade]:
        unified = await self._unified(symbol)
        raw = await self._call(self._client.fetch_trades(unified, None, limit))
        return [self._trade(item, self._etrms(unified)) for item in raw]

    async def fetch_my_trades(self, symbol: str, since: datetime | None = None, limit: int = 500) -> list[Trade]:
        unified = await self._unified(symbol)
        if not self._client.has.get("fetchMyTrades"):
            return []
        raw = await self._call(self._client.fetch_my_trades(unified, _ms(since), limit))
        # Fees paid in another currency (BNB) are converted at the venue's <ASSET>USDT
        # price now (SPEC §3: never summed 1:1).
        symbol_map = await self.load_markets()
        currencies = {_fee_currency(item) for trade in raw for item in _fees(trade)} - set(USD_QUOTES)
        rates = {currency: await self._usd_rate(currency, symbol_map) for currency in sorted(currencies)}
        trades = [self._trade(item, self._etrms(unified), rates) for item in raw]
        return sorted(trades, key=lambda trade: (trade.timestamp, trade.id))

    async def fetch_funding_payments(self, symbol: str, since: datetime | None = None) -> list[FundingPayment]:
        unified = await self._unified(symbol)
        if not self._client.has.get("fetchFundingHistory"):
            return []
        raw = await self._call(self._client.fetch_funding_history(unified, _ms(since)))
        return [
            FundingPayment(
                symbol=self._etrms(unified),
                amount=_dec(item.get("amount")) or Decimal(0),
                timestamp=_dt(item.get("timestamp")),
                id=str(item.get("id") or ""),
            )
            for item in raw
        ]

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


def _fees(raw: dict) -> list[dict]:
    return [item for item in (raw.get("fees") or ([raw["fee"]] if raw.get("fee") else [])) if item]


def _fee_currency(item: dict) -> str:
    return str(item.get("currency") or "USDT").upper()


def _assets(raw: dict) -> dict:
    return {
        asset: str(total)
        for asset, total in (raw.get("total") or {}).items()
        if total not in (None, 0, "0") and isinstance(asset, str)
    }
