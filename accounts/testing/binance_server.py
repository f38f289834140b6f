"""A local Binance USD-M futures server for offline tests of the real ccxt code paths.

It speaks the part of Binance's REST API (and market WebSocket streams) that ETRMS's
exchange interface uses, verifies every signed request the way Binance does (API key
header, HMAC-SHA256 of the query string or body with the test secret, timestamp within
`recvWindow`), and keeps an account: wallet, positions (one-way or hedge mode), orders,
fills with realized PnL and commission, funding income. Market orders fill at the mark.

Point ccxt at it with `EXCHANGE_API_URLS = {"binanceusdm": server.url}` (the exchange
layer rewrites every URL of ccxt's `urls['api']` to this host and turns off
`fetchCurrencies`). Script it from a test:

    server.set_price("BTCUSDT", 65000)               # also pushed on the WebSocket
    server.set_mark_price("BTCUSDT", 64990)          # premiumIndex's mark (default: the price)
    server.set_position("BTCUSDT", 0.5, entry_price=60000)   # negative amount: short
    server.set_wallet(10000)
    server.add_open_order("BTCUSDT", "BUY", 0.1, price=50000)
    server.add_funding("BTCUSDT", -1.25)
    server.fail_next(status=429, retry_after=3)      # or 500/502/503, or
    server.fail_next(kind="bad_signature")           # or kind="timeout", delay=2
    server.refuse_streams()                          # WebSockets refused: clients poll REST
    server.deposit(100000); server.withdraw(5000)    # wallet transfers (income TRANSFER)
    server.script_next_order("NEW")                  # or "PARTIALLY_FILLED"/"EXPIRED", filled=...
    server.push_trade("BTCUSDT", 65010, 0.2, "buy")
    server.requests                                  # what ccxt sent: method, path, params
    server.countdown_armed("BTCUSDT")                # countdownCancelAll armed (binance_countdown)

Runs an aiohttp server on 127.0.0.1 (ephemeral port) in a thread of its own; state is
guarded by a lock, so tests script it from their own thread. No Django in here.
"""

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from accounts.testing.binance_countdown import CountdownCancelAll

API_KEY = "etrms-test-api-key"
API_SECRET = "etrms-test-secret-0123456789abcdef"  # noqa: S105 (a test fixture's secret)
TAKER_FEE = Decimal("0.0004")
MAINT_MARGIN_RATE = Decimal("0.004")
ZERO = Decimal(0)

DEFAULT_MARKETS = {
    # symbol: (base, quote, price, tick size, step size)
    "BTCUSDT": ("BTC", "USDT", Decimal(60000), Decimal("0.1"), Decimal("0.001")),
    "ETHUSDT": ("ETH", "USDT", Decimal(3000), Decimal("0.01"), Decimal("0.001")),
    "SOLUSDT": ("SOL", "USDT", Decimal(150), Decimal("0.001"), Decimal("0.01")),
    "BTCUSDC": ("BTC", "USDC", Decimal(60010), Decimal("0.1"), Decimal("0.001")),
}
# A dated quarterly future next to the perpetual: the symbol map must pick the perpetual.
QUARTERLY = ("BTCUSDT_261225", "BTC", "USDT", 1798185600000)


def _s(value) -> str:
    """Binance's number strings."""
    value = Decimal(value)
    text = format(value.normalize(), "f") if value else "0"
    return text


def _ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Failure:
    kind: str  # status | bad_signature | timeout
    status: int = 500
    retry_after: int | None = None
    delay: float = 0.0
    path: str | None = None
    times: int = 1


@dataclass
class Market:
    symbol: str
    base: str
    quote: str
    tick: Decimal
    step: Decimal
    price: Decimal
    open: Decimal
    high: Decimal
    low: Decimal
    leverage: int = 10
    mark: Decimal | None = None  # the venue's mark price; the last price when not set


@dataclass
class Holding:
    amount: Decimal  # signed: negative is short
    entry: Decimal
    update_time: int = field(default_factory=_ms)


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: dict
    signed: bool


class BinanceError(Exception):
    def __init__(self, status: int, code: int, msg: str, headers: dict | None = None):
        super().__init__(msg)
        self.status, self.code, self.msg, self.headers = status, code, msg, headers or {}


class LocalBinanceServer(CountdownCancelAll):
    def __init__(self, *, api_key: str = API_KEY, secret: str = API_SECRET):
        self.api_key, self.secret = api_key, secret
        self._lock = threading.RLock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._sockets: list[tuple[web.WebSocketResponse, set[str]]] = []
        self.port: int | None = None
        self.reset()

    # --- lifecycle -------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "LocalBinanceServer":
        ready = threading.Event()

        def run():
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._start_app())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="local-binance", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the local Binance server did not start")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._stop_app(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = None

    async def _start_app(self):
        app = web.Application()
        for prefix in ("", "/market", "/public"):
            app.router.add_get(prefix + "/ws", self._websocket)
            app.router.add_get(prefix + "/ws/{stream}", self._websocket)
        app.router.add_route("*", "/{path:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self._pusher = asyncio.ensure_future(self._push_loop())

    async def _stop_app(self):
        self._pusher.cancel()
        for socket, _ in list(self._sockets):
            await socket.close()
        await self._runner.cleanup()

    # --- scripting surface -----------------------------------------------------------
    def reset(self) -> None:
        """Back to the default markets, an empty 10,000 USDT account, no failures."""
        with self._lock:
            self.markets: dict[str, Market] = {
                symbol: Market(symbol, base, quote, tick, step, price, price, price, price)
                for symbol, (base, quote, price, tick, step) in DEFAULT_MARKETS.items()
            }
            self.wallet: dict[str, Decimal] = {"USDT": Decimal(10000)}
            self.holdings: dict[tuple[str, str], Holding] = {}
            self.hedge_mode = False
            self.orders: list[dict] = []
            self.user_trades: list[dict] = []
            self.income: list[dict] = []
            self.public_trades: dict[str, list[dict]] = {}
            self.failures: list[Failure] = []
            self.order_script: list[tuple[str, Decimal | None]] = []
            self.requests: list[RecordedRequest] = []
            self._ids = itertools.count(1000)
            self.streams_refused = False
            self.countdown_reset()

    def refuse_streams(self, refused: bool = True) -> None:
        """WebSocket connections are refused (HTTP 503) while set, and open ones closed:
        clients must fall back to REST polling."""
        with self._lock:
            self.streams_refused = refused
        if refused and self._loop is not None and self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._close_streams(), self._loop)

    async def _close_streams(self) -> None:
        for socket, _ in list(self._sockets):
            await socket.close()

    def set_price(self, symbol: str, price) -> None:
        with self._lock:
            market = self.markets[symbol]
            market.price = Decimal(str(price))
            market.high = max(market.high, market.price)
            market.low = min(market.low, market.price)
        self._notify(symbol)

    def set_mark_price(self, symbol: str, price) -> None:
        """The mark price `premiumIndex` reports (None: the last price again)."""
        with self._lock:
            self.markets[symbol].mark = None if price is None else Decimal(str(price))

    def add_market(self, symbol: str, base: str, quote: str, price, *, tick="0.01", step="0.001") -> None:
        with self._lock:
            price = Decimal(str(price))
            self.markets[symbol] = Market(symbol, base, quote, Decimal(tick), Decimal(step), price, price, price, price)

    def set_wallet(self, amount, asset: str = "USDT") -> None:
        with self._lock:
            self.wallet[asset] = Decimal(str(amount))

    def set_hedge_mode(self, enabled: bool) -> None:
        with self._lock:
            self.hedge_mode = enabled

    def set_leverage(self, symbol: str, leverage: int) -> None:
        with self._lock:
            self.markets[symbol].leverage = leverage

    def set_position(self, symbol: str, amount, *, entry_price, position_side: str | None = None) -> None:
        """Put a position on the book directly (no fill recorded). amount < 0: short;
        0 removes it. `position_side` LONG/SHORT in hedge mode, else BOTH."""
        with self._lock:
            amount = Decimal(str(amount))
            side = position_side or "BOTH"
            if self.hedge_mode and position_side is None:
                side = "LONG" if amount > 0 else "SHORT"
            if amount == 0:
                self.holdings.pop((symbol, side), None)
            else:
                self.holdings[(symbol, side)] = Holding(amount, Decimal(str(entry_price)))

    def add_open_order(self, symbol: str, side: str, quantity, *, price) -> dict:
        with self._lock:
            order = self._new_order(symbol, side.upper(), "LIMIT", Decimal(str(quantity)), Decimal(str(price)))
            order["status"] = "NEW"
            return order

    def add_funding(self, symbol: str, amount, *, at_ms: int | None = None) -> None:
        with self._lock:
            self.income.append(
                {
                    "symbol": symbol,
                    "incomeType": "FUNDING_FEE",
                    "income": _s(amount),
                    "asset": "USDT",
                    "info": "FUNDING_FEE",
                    "time": at_ms or _ms(),
                    "tranId": next(self._ids),
                    "tradeId": "",
                }
            )
            self.wallet["USDT"] += Decimal(str(amount))

    def fill(
        self,
        symbol: str,
        side: str,
        quantity,
        *,
        reduce_only: bool = False,
        position_side: str = "BOTH",
        commission_asset: str = "USDT",
    ) -> dict:
        """Trade on the account as if its owner sent a market order. `commission_asset`
        other than USDT (BNB) charges the fee in that asset at its USDT price."""
        with self._lock:
            return self._market_order(
                symbol, side.upper(), Decimal(str(quantity)), reduce_only, position_side, None, commission_asset
            )

    def deposit(self, amount, asset: str = "USDT") -> None:
        """A transfer into the futures wallet (negative: a withdrawal), listed by the
        income endpoint as `TRANSFER`, as Binance does."""
        with self._lock:
            amount = Decimal(str(amount))
            self.wallet[asset] = self.wallet.get(asset, ZERO) + amount
            self.income.append(
                {
                    "symbol": "",
                    "incomeType": "TRANSFER",
                    "income": _s(amount),
                    "asset": asset,
                    "info": "TRANSFER",
                    "time": _ms(),
                    "tranId": next(self._ids),
                    "tradeId": "",
                }
            )

    def withdraw(self, amount, asset: str = "USDT") -> None:
        self.deposit(-Decimal(str(amount)), asset)

    def script_next_order(self, status: str, *, filled=None, times: int = 1) -> None:
        """The next `times` market orders sent through the API end as `status`: "NEW"
        (accepted, nothing filled, stays open), "PARTIALLY_FILLED" (fills `filled`, the
        rest stays open) or "EXPIRED" (fills `filled`, default 0, the rest expires)."""
        if status not in ("NEW", "PARTIALLY_FILLED", "EXPIRED"):
            raise ValueError(status)
        with self._lock:
            quantity = None if filled is None else Decimal(str(filled))
            self.order_script.extend([(status, quantity)] * times)

    def fail_next(
        self,
        *,
        status: int = 500,
        kind: str = "status",
        retry_after: int | None = None,
        delay: float = 0.0,
        path: str | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` requests (whose path starts with `path`, if given) fail:
        kind "status" answers `status` (429/418 with Retry-After), "bad_signature"
        rejects the signature (-1022) of the next signed requests, "timeout" waits `delay`
        seconds before answering."""
        with self._lock:
            self.failures.append(Failure(kind, status, retry_after, delay, path, times))

    def push_trade(self, symbol: str, price, quantity, side: str) -> None:
        with self._lock:
            trade = {
                "id": next(self._ids),
                "price": _s(price),
                "qty": _s(quantity),
                "time": _ms(),
                "isBuyerMaker": side.lower() == "sell",
            }
            self.public_trades.setdefault(symbol, []).append(trade)
            self.markets[symbol].price = Decimal(str(price))
        self._notify(symbol, trade=trade)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [request for request in self.requests if request.path == path]

    # --- HTTP ------------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["path"]
        raw_query = request.rel_url.raw_query_string
        body = await request.text() if request.method in ("POST", "PUT") else ""
        params = dict(parse_qsl(raw_query)) | dict(parse_qsl(body))
        route = self._routes().get((request.method, path))
        signed = route is not None and route[1]
        with self._lock:
            self.requests.append(RecordedRequest(request.method, path, params, signed))
            failure = self._take_failure(path, signed)
        try:
            if failure is not None and failure.kind == "timeout":
                await asyncio.sleep(failure.delay)
            if failure is not None and failure.kind == "status":
                headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after else {}
                if failure.status in (418, 429):
                    raise BinanceError(failure.status, -1003, "Too many requests; current limit is 2400.", headers)
                return web.Response(status=failure.status, text="Service Unavailable", headers=headers)
            if route is None:
                raise BinanceError(404, -1000, f"Unknown endpoint {request.method} {path}.")
            handler, needs_signature = route
            if needs_signature:
                bad = failure is not None and failure.kind == "bad_signature"
                self._verify(request, raw_query, body, force_bad=bad)
            with self._lock:
                result = handler(params)
            return web.json_response(result)
        except BinanceError as error:
            return web.json_response({"code": error.code, "msg": error.msg}, status=error.status, headers=error.headers)

    def _take_failure(self, path: str, signed: bool) -> Failure | None:
        for failure in self.failures:
            if failure.kind == "bad_signature" and not signed:
                continue  # only a signed request can have a bad signature
            if failure.path is None or path.startswith(failure.path):
                failure.times -= 1
                if failure.times <= 0:
                    self.failures.remove(failure)
                return failure
        return None

    def _verify(self, request: web.Request, raw_query: str, body: str, *, force_bad: bool) -> None:
        if request.headers.get("X-MBX-APIKEY") != self.api_key:
            raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        payload = body if request.method in ("POST", "PUT") else raw_query
        signed_part, _, signature = payload.rpartition("&signature=")
        expected = hmac.new(self.secret.encode(), signed_part.encode(), hashlib.sha256).hexdigest()
        if force_bad or not signature or not hmac.compare_digest(expected, signature):
            raise BinanceError(400, -1022, "Signature for this request is not valid.")
        params = dict(parse_qsl(signed_part))
        timestamp, window = int(params.get("timestamp", 0)), int(params.get("recvWindow", 5000))
        if abs(_ms() - timestamp) > window:
            raise BinanceError(400, -1021, "Timestamp for this request is outside of the recvWindow.")

    def _routes(self) -> dict:
        return {
            ("GET", "/fapi/v1/ping"): (lambda params: {}, False),
            ("GET", "/fapi/v1/time"): (lambda params: {"serverTime": _ms()}, False),
            ("GET", "/fapi/v1/exchangeInfo"): (self._exchange_info, False),
            ("GET", "/fapi/v1/ticker/24hr"): (self._ticker, False),
            ("GET", "/fapi/v1/premiumIndex"): (self._premium_index, False),
            ("GET", "/fapi/v1/depth"): (self._depth, False),
            ("GET", "/fapi/v1/aggTrades"): (self._agg_trades, False),
            ("GET", "/fapi/v1/trades"): (self._trades, False),
            ("GET", "/fapi/v3/account"): (self._account, True),
            ("GET", "/fapi/v2/account"): (self._account, True),
            ("GET", "/fapi/v1/leverageBracket"): (self._brackets, True),
            ("GET", "/fapi/v3/positionRisk"): (self._position_risk, True),
            ("GET", "/fapi/v2/positionRisk"): (self._position_risk, True),
            ("GET", "/fapi/v1/positionSide/dual"): (lambda params: {"dualSidePosition": self.hedge_mode}, True),
            ("POST", "/fapi/v1/order"): (self._create_order, True),
            ("GET", "/fapi/v1/order"): (self._get_order, True),
            ("GET", "/fapi/v1/openOrders"): (self._open_orders, True),
            ("DELETE", "/fapi/v1/allOpenOrders"): (self._cancel_all, True),
            ("POST", "/fapi/v1/countdownCancelAll"): (self._countdown_cancel_all, True),
            ("GET", "/fapi/v1/userTrades"): (self._user_trades, True),
            ("GET", "/fapi/v1/income"): (self._income, True),
        }

    def _market(self, params: dict) -> Market:
        market = self.markets.get(params.get("symbol", ""))
        if market is None:
            raise BinanceError(400, -1121, "Invalid symbol.")
        return market

    # --- public endpoints ------------------------------------------------------------
    def _exchange_info(self, params):
        def entry(symbol, base, quote, tick, step, contract_type="PERPETUAL", delivery=4133404800000):
            return {
                "symbol": symbol,
                "pair": base + quote,
                "contractType": contract_type,
                "deliveryDate": delivery,
                "onboardDate": 1569398400000,
                "status": "TRADING",
                "baseAsset": base,
                "quoteAsset": quote,
                "marginAsset": quote,
                "pricePrecision": max(0, -tick.normalize().as_tuple().exponent),
                "quantityPrecision": max(0, -step.normalize().as_tuple().exponent),
                "baseAssetPrecision": 8,
                "quotePrecision": 8,
                "underlyingType": "COIN",
                "triggerProtect": "0.0500",
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": _s(tick), "maxPrice": "4529764", "tickSize": _s(tick)},
                    {"filterType": "LOT_SIZE", "minQty": _s(step), "maxQty": "1000", "stepSize": _s(step)},
                    {"filterType": "MARKET_LOT_SIZE", "minQty": _s(step), "maxQty": "120", "stepSize": _s(step)},
                    {"filterType": "MIN_NOTIONAL", "notional": "5"},
                ],
                "orderTypes": ["LIMIT", "MARKET"],
                "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
            }

        symbols = [entry(m.symbol, m.base, m.quote, m.tick, m.step) for m in self.markets.values()]
        code, base, quote, delivery = QUARTERLY
        symbols.append(entry(code, base, quote, Decimal("0.1"), Decimal("0.001"), "CURRENT_QUARTER", delivery))
        return {"timezone": "UTC", "serverTime": _ms(), "rateLimits": [], "exchangeFilters": [], "symbols": symbols}

    def _ticker_body(self, market: Market) -> dict:
        change = market.price - market.open
        return {
            "symbol": market.symbol,
            "priceChange": _s(change),
            "priceChangePercent": _s((change / market.open * 100).quantize(Decimal("0.001"))),
            "weightedAvgPrice": _s(market.price),
            "lastPrice": _s(market.price),
            "lastQty": "0.010",
            "openPrice": _s(market.open),
            "highPrice": _s(market.high),
            "lowPrice": _s(market.low),
            "volume": "1234.5",
            "quoteVolume": _s(Decimal("1234.5") * market.price),
            "openTime": _ms() - 86400000,
            "closeTime": _ms(),
            "firstId": 1,
            "lastId": 2,
            "count": 2,
        }

    def _ticker(self, params):
        return self._ticker_body(self._market(params))

    def _premium_index(self, params):
        """Mark prices: one symbol, or every market when none is named."""

        def body(market: Market) -> dict:
            return {
                "symbol": market.symbol,
                "markPrice": _s(market.mark if market.mark is not None else market.price),
                "indexPrice": _s(market.price),
                "estimatedSettlePrice": _s(market.price),
                "lastFundingRate": "0.0001",
                "interestRate": "0.0001",
                "nextFundingTime": _ms() + 3600000,
                "time": _ms(),
            }

        if params.get("symbol"):
            return body(self._market(params))
        return [body(market) for market in self.markets.values()]

    def _depth(self, params):
        market = self._market(params)
        limit = int(params.get("limit", 20))
        if limit not in (5, 10, 20, 50, 100, 500, 1000):
            raise BinanceError(400, -1100, "Illegal characters found in parameter 'limit'.")
        bids = [[_s(market.price - market.tick * (i + 1)), _s(market.step * (i + 1))] for i in range(limit)]
        asks = [[_s(market.price + market.tick * (i + 1)), _s(market.step * (i + 1))] for i in range(limit)]
        return {"lastUpdateId": next(self._ids), "E": _ms(), "T": _ms(), "bids": bids, "asks": asks}

    def _recent(self, market: Market, limit: int) -> list[dict]:
        trades = self.public_trades.get(market.symbol) or [
            {"id": 1, "price": _s(market.price), "qty": _s(market.step), "time": _ms(), "isBuyerMaker": False}
        ]
        return trades[-limit:]

    def _agg_trades(self, params):
        market = self._market(params)
        return [
            {
                "a": trade["id"],
                "p": trade["price"],
                "q": trade["qty"],
                "f": trade["id"],
                "l": trade["id"],
                "T": trade["time"],
                "m": trade["isBuyerMaker"],
            }
            for trade in self._recent(market, int(params.get("limit", 500)))
        ]

    def _trades(self, params):
        market = self._market(params)
        return [
            {**trade, "quoteQty": _s(Decimal(trade["price"]) * Decimal(trade["qty"]))}
            for trade in self._recent(market, int(params.get("limit", 500)))
        ]

    # --- account ---------------------------------------------------------------------
    def _position_numbers(self):
        rows = []
        for (symbol, side), holding in self.holdings.items():
            market = self.markets[symbol]
            notional = holding.amount * market.price  # signed, as Binance
            unrealized = (market.price - holding.entry) * holding.amount
            rows.append(
                {
                    "symbol": symbol,
                    "side": side,
                    "holding": holding,
                    "market": market,
                    "notional": notional,
                    "unrealized": unrealized,
                    "initial": abs(notional) / market.leverage,
                    "maint": abs(notional) * MAINT_MARGIN_RATE,
                }
            )
        return rows

    def _usd_price(self, asset: str) -> Decimal:
        if asset in ("USDT", "USDC", "USD"):
            return Decimal(1)
        market = self.markets.get(asset + "USDT")
        return market.price if market else ZERO

    def _totals(self):
        rows = self._position_numbers()
        wallet = sum((amount * self._usd_price(asset) for asset, amount in self.wallet.items()), ZERO)
        unrealized = sum((row["unrealized"] for row in rows), ZERO)
        initial = sum((row["initial"] for row in rows), ZERO)
        open_initial = sum(
            (
                Decimal(order["price"]) * Decimal(order["origQty"]) / self.markets[order["symbol"]].leverage
                for order in self.orders
                if order["status"] == "NEW"
            ),
            ZERO,
        )
        maint = sum((row["maint"] for row in rows), ZERO)
        return rows, wallet, unrealized, initial, open_initial, maint

    def _account(self, params):
        rows, wallet, unrealized, initial, open_initial, maint = self._totals()
        margin_balance = wallet + unrealized
        available = margin_balance - initial - open_initial
        now = _ms()
        return {
            "totalInitialMargin": _s(initial + open_initial),
            "totalMaintMargin": _s(maint),
            "totalWalletBalance": _s(wallet),
            "totalUnrealizedProfit": _s(unrealized),
            "totalMarginBalance": _s(margin_balance),
            "totalPositionInitialMargin": _s(initial),
            "totalOpenOrderInitialMargin": _s(open_initial),
            "totalCrossWalletBalance": _s(wallet),
            "totalCrossUnPnl": _s(unrealized),
            "availableBalance": _s(available),
            "maxWithdrawAmount": _s(available),
            "assets": [
                {
                    "asset": asset,
                    "walletBalance": _s(amount),
                    "unrealizedProfit": _s(unrealized if asset == "USDT" else ZERO),
                    "marginBalance": _s(amount + (unrealized if asset == "USDT" else ZERO)),
                    "maintMargin": _s(maint if asset == "USDT" else ZERO),
                    "initialMargin": _s(initial + open_initial if asset == "USDT" else ZERO),
                    "positionInitialMargin": _s(initial if asset == "USDT" else ZERO),
                    "openOrderInitialMargin": _s(open_initial if asset == "USDT" else ZERO),
                    "crossWalletBalance": _s(amount),
                    "crossUnPnl": _s(unrealized if asset == "USDT" else ZERO),
                    "availableBalance": _s(available if asset == "USDT" else amount),
                    "maxWithdrawAmount": _s(available if asset == "USDT" else amount),
                    "updateTime": now,
                }
                for asset, amount in self.wallet.items()
            ],
            "positions": [
                {
                    "symbol": row["symbol"],
                    "positionSide": row["side"],
                    "positionAmt": _s(row["holding"].amount),
                    "unrealizedProfit": _s(row["unrealized"]),
                    "isolatedMargin": "0",
                    "notional": _s(row["notional"]),
                    "isolatedWallet": "0",
                    "initialMargin": _s(row["initial"]),
                    "maintMargin": _s(row["maint"]),
                    "updateTime": row["holding"].update_time,
                }
                for row in rows
            ],
        }

    def _brackets(self, params):
        return [
            {
                "symbol": symbol,
                "notionalCoef": 1.0,
                "brackets": [
                    {
                        "bracket": 1,
                        "initialLeverage": 125,
                        "notionalCap": 1000000000,
                        "notionalFloor": 0,
                        "maintMarginRatio": float(MAINT_MARGIN_RATE),
                        "cum": 0.0,
                    }
                ],
            }
            for symbol in self.markets
        ]

    def _position_risk(self, params):
        rows, wallet, unrealized, _, _, maint = self._totals()
        result = []
        for row in rows:
            if params.get("symbol") and params["symbol"] != row["symbol"]:
                continue
            holding, market = row["holding"], row["market"]
            size = abs(holding.amount)
            cushion = wallet + (unrealized - row["unrealized"]) - (maint - row["maint"])
            if holding.amount > 0:
                liquidation = (size * holding.entry - cushion) / (size * (1 - MAINT_MARGIN_RATE))
            else:
                liquidation = (cushion + size * holding.entry) / (size * (1 + MAINT_MARGIN_RATE))
            result.append(
                {
                    "symbol": row["symbol"],
                    "positionSide": row["side"],
                    "positionAmt": _s(holding.amount),
                    "entryPrice": _s(holding.entry),
                    "breakEvenPrice": _s(holding.entry),
                    "markPrice": _s(market.price),
                    "unRealizedProfit": _s(row["unrealized"]),
                    "liquidationPrice": _s(max(liquidation, ZERO).quantize(Decimal("0.01"))),
                    "isolatedMargin": "0",
                    "notional": _s(row["notional"]),
                    "marginAsset": market.quote,
                    "isolatedWallet": "0",
                    "initialMargin": _s(row["initial"]),
                    "maintMargin": _s(row["maint"]),
                    "positionInitialMargin": _s(row["initial"]),
                    "openOrderInitialMargin": "0",
                    "adl": 1,
                    "bidNotional": "0",
                    "askNotional": "0",
                    "updateTime": holding.update_time,
                }
            )
        return result

    # --- orders ----------------------------------------------------------------------
    def _new_order(self, symbol, side, order_type, quantity, price, client_id=None, reduce_only=False, pside="BOTH"):
        order = {
            "orderId": next(self._ids),
            "symbol": symbol,
            "status": "NEW",
            "clientOrderId": client_id or f"local-{next(self._ids)}",
            "price": _s(price or ZERO),
            "avgPrice": "0",
            "origQty": _s(quantity),
            "executedQty": "0",
            "cumQty": "0",
            "cumQuote": "0",
            "timeInForce": "GTC",
            "type": order_type,
            "reduceOnly": reduce_only,
            "closePosition": False,
            "side": side,
            "positionSide": pside,
            "stopPrice": "0",
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "origType": order_type,
            "time": _ms(),
            "updateTime": _ms(),
        }
        self.orders.append(order)
        return order

    def _market_order(
        self, symbol, side, quantity, reduce_only, position_side, client_id, commission_asset="USDT", script=None
    ) -> dict:
        """`script` (status, filled) from `script_next_order`: only `filled` executes."""
        market = self.markets[symbol]
        if quantity <= 0 or (quantity / market.step) % 1:
            raise BinanceError(400, -1111, "Precision is over the maximum defined for this asset.")
        if self.hedge_mode and position_side == "BOTH":
            raise BinanceError(400, -4061, "Order's position side does not match user's setting.")
        if not self.hedge_mode and position_side != "BOTH":
            raise BinanceError(400, -4061, "Order's position side does not match user's setting.")
        if self.hedge_mode and reduce_only:
            raise BinanceError(400, -1106, "Parameter 'reduceonly' sent when not required.")
        price = market.price
        direction = 1 if side == "BUY" else -1
        key = (symbol, position_side)
        holding = self.holdings.get(key)
        if self.hedge_mode:
            closing = (position_side == "LONG") == (side == "SELL")
        else:
            closing = holding is not None and (holding.amount > 0) != (direction > 0)
        if reduce_only and not closing:
            raise BinanceError(400, -2022, "ReduceOnly Order is rejected.")
        ordered = quantity
        if script is not None:
            quantity = script[1] if script[1] is not None else ZERO
            if script[0] == "NEW":
                quantity = ZERO
        if quantity <= 0:
            order = self._new_order(symbol, side, "MARKET", ordered, ZERO, client_id, reduce_only, position_side)
            order["status"] = script[0] if script else "NEW"
            return order
        realized = ZERO
        filled = quantity
        if closing:
            if holding is None:
                raise BinanceError(400, -2022, "ReduceOnly Order is rejected.")
            closed = min(quantity, abs(holding.amount))
            if reduce_only or self.hedge_mode:
                filled = closed
            sign = 1 if holding.amount > 0 else -1
            realized = (price - holding.entry) * closed * sign
            remaining = abs(holding.amount) - closed
            opened = filled - closed
            if remaining:
                holding.amount = remaining * sign
                holding.update_time = _ms()
            else:
                del self.holdings[key]
            if opened > 0:
                self.holdings[key] = Holding(opened * direction, price)
        else:
            if holding is None:
                self.holdings[key] = Holding(quantity * direction, price)
            else:
                total = abs(holding.amount) + quantity
                holding.entry = (holding.entry * abs(holding.amount) + price * quantity) / total
                holding.amount += quantity * direction
                holding.update_time = _ms()
        commission = (price * filled * TAKER_FEE).quantize(Decimal("0.00000001"))
        self.wallet["USDT"] += realized
        if commission_asset == "USDT":
            self.wallet["USDT"] -= commission
        else:
            rate = self.markets[commission_asset + "USDT"].price
            commission = (commission / rate).quantize(Decimal("0.00000001"))
            self.wallet[commission_asset] = self.wallet.get(commission_asset, ZERO) - commission
        order = self._new_order(symbol, side, "MARKET", ordered, ZERO, client_id, reduce_only, position_side)
        status = "FILLED" if script is None else script[0]
        order.update(
            status=status,
            avgPrice=_s(price),
            executedQty=_s(filled),
            cumQty=_s(filled),
            cumQuote=_s(price * filled),
        )
        self.user_trades.append(
            {
                "buyer": side == "BUY",
                "commission": _s(commission),
                "commissionAsset": commission_asset,
                "id": next(self._ids),
                "maker": False,
                "orderId": order["orderId"],
                "price": _s(price),
                "qty": _s(filled),
                "quoteQty": _s(price * filled),
                "realizedPnl": _s(realized),
                "side": side,
                "positionSide": position_side,
                "symbol": symbol,
                "time": _ms(),
            }
        )
        return order

    def _create_order(self, params):
        market = self._market(params)
        client_id = params.get("newClientOrderId")
        if client_id and any(order["clientOrderId"] == client_id for order in self.orders):
            raise BinanceError(400, -4116, "ClientOrderId is duplicated.")
        side, order_type = params.get("side"), params.get("type")
        quantity = Decimal(params.get("quantity", "0"))
        reduce_only = params.get("reduceOnly", "false").lower() == "true"
        position_side = params.get("positionSide", "BOTH")
        if order_type == "MARKET":
            script = self.order_script.pop(0) if self.order_script else None
            order = self._market_order(
                market.symbol, side, quantity, reduce_only, position_side, client_id, script=script
            )
            if params.get("newOrderRespType", "ACK").upper() == "RESULT":
                return order
            # ACK, Binance's default on futures: accepted, nothing about the execution.
            return {**order, "status": "NEW", "executedQty": "0", "cumQty": "0", "cumQuote": "0", "avgPrice": "0.00"}
        if order_type == "LIMIT":
            return self._new_order(
                market.symbol, side, "LIMIT", quantity, Decimal(params["price"]), client_id, reduce_only, position_side
            )
        raise BinanceError(400, -1116, "Invalid orderType.")

    def _get_order(self, params):
        for order in self.orders:
            if str(order["orderId"]) == params.get("orderId") or order["clientOrderId"] == params.get(
                "origClientOrderId"
            ):
                return order
        raise BinanceError(400, -2013, "Order does not exist.")

    def _open_orders(self, params):
        return [
            order
            for order in self.orders
            if order["status"] == "NEW" and (not params.get("symbol") or order["symbol"] == params["symbol"])
        ]

    def _cancel_all(self, params):
        market = self._market(params)
        for order in self.orders:
            if order["symbol"] == market.symbol and order["status"] == "NEW":
                order["status"] = "CANCELED"
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    def _user_trades(self, params):
        market = self._market(params)
        start = int(params.get("startTime", 0))
        trades = [t for t in self.user_trades if t["symbol"] == market.symbol and t["time"] >= start]
        return trades[-int(params.get("limit", 500)) :]

    def _income(self, params):
        start = int(params.get("startTime", 0))
        kind = params.get("incomeType")
        return [
            item
            for item in self.income
            if item["time"] >= start
            and (not params.get("symbol") or item["symbol"] == params["symbol"])
            and (not kind or item["incomeType"] == kind)
        ]

    # --- WebSocket market streams ------------------------------------------------------
    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        if self.streams_refused:
            raise web.HTTPServiceUnavailable(text="streams refused by the test")
        socket = web.WebSocketResponse(heartbeat=None)
        await socket.prepare(request)
        streams: set[str] = set()
        entry = (socket, streams)
        self._sockets.append(entry)
        try:
            async for message in socket:
                if message.type != WSMsgType.TEXT:
                    continue
                try:
                    payload = json.loads(message.data)
                except ValueError:
                    continue
                method, names = payload.get("method"), payload.get("params") or []
                if method == "SUBSCRIBE":
                    streams.update(names)
                elif method == "UNSUBSCRIBE":
                    streams.difference_update(names)
                await socket.send_json({"result": None, "id": payload.get("id")})
                if method == "SUBSCRIBE":
                    for name in names:
                        await self._send_stream(socket, name)
        finally:
            self._sockets.remove(entry)
        return socket

    def _event(self, name: str, trade: dict | None = None) -> dict | None:
        symbol, _, channel = name.partition("@")
        with self._lock:
            market = self.markets.get(symbol.upper())
            if market is None:
                return None
            now = _ms()
            if channel in ("ticker", "miniTicker"):
                body = self._ticker_body(market)
                event = {
                    "e": "24hrTicker" if channel == "ticker" else "24hrMiniTicker",
                    "E": now,
                    "s": market.symbol,
                    "c": body["lastPrice"],
                    "o": body["openPrice"],
                    "h": body["highPrice"],
                    "l": body["lowPrice"],
                    "v": body["volume"],
                    "q": body["quoteVolume"],
                }
                if channel == "ticker":
                    event.update(p=body["priceChange"], P=body["priceChangePercent"], O=body["openTime"], C=now)
                return event
            if channel in ("trade", "aggTrade") and trade is not None:
                return {
                    "e": channel,
                    "E": now,
                    "T": trade["time"],
                    "s": market.symbol,
                    "t" if channel == "trade" else "a": trade["id"],
                    "p": trade["price"],
                    "q": trade["qty"],
                    "X": "MARKET",
                    "m": trade["isBuyerMaker"],
                }
        return None

    async def _send_stream(self, socket, name: str, trade: dict | None = None) -> None:
        event = self._event(name, trade)
        if event is not None and not socket.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await socket.send_json(event)

    async def _broadcast(self, symbol: str, trade: dict | None) -> None:
        for socket, streams in list(self._sockets):
            for name in list(streams):
                if name.split("@")[0].upper() == symbol and (trade is not None) == ("rade" in name):
                    await self._send_stream(socket, name, trade)

    def _notify(self, symbol: str, trade: dict | None = None) -> None:
        if self._loop is not None and self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._broadcast(symbol, trade), self._loop)

    async def _push_loop(self) -> None:
        """Tickers every quarter second, like Binance's 250 ms ticker streams."""
        while True:
            await asyncio.sleep(0.25)
            for socket, streams in list(self._sockets):
                for name in list(streams):
                    if "icker" in name:
                        await self._send_stream(socket, name)
