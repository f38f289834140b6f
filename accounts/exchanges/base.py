"""The one exchange interface (SPEC §6, STYLE §5).

Everything outside this package (sync, market data, breaker actions) talks to an
`Exchange`: async, symbols in ETRMS form (`BTCUSDT`), money and quantities `Decimal`,
times aware UTC datetimes, errors from `accounts.exchanges.errors`. Two implementations:
`CcxtExchange` (any ccxt exchange id) and `PaperExchange` (`paper`).

Use it as an async context manager so the client is always closed:

    async with exchange_open("binanceusdm", credentials=creds) as exchange:
        balance = await exchange.fetch_balance()

Units: `size`/`amount` are base-currency quantities (contracts x contract size);
prices and PnL are in the market's quote currency, and USD stablecoins count 1:1.
"""

import abc
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from accounts.exchanges.errors import ExchangeNotSupported
from accounts.exchanges.symbols import SymbolMap

LONG, SHORT = "long", "short"
BUY, SELL = "buy", "sell"

# What an order really did (`OrderResult.status`), as the venue reports it.
FILLED = "filled"  # filled == amount
PARTIALLY_FILLED = "partially_filled"  # 0 < filled < amount, the rest still working
NOT_FILLED = "new"  # acknowledged, nothing filled yet
EXPIRED = "expired"  # the venue ended it; `filled` says how much filled before
CANCELED = "canceled"
REJECTED = "rejected"
ORDER_STATUSES = (FILLED, PARTIALLY_FILLED, NOT_FILLED, EXPIRED, CANCELED, REJECTED)


@dataclass(frozen=True)
class Credentials:
    """API credentials as ccxt names them. Never printed: repr shows which are set."""

    api_key: str = ""
    secret: str = ""
    password: str = ""  # okx's passphrase
    uid: str = ""
    wallet_address: str = ""  # hyperliquid
    private_key: str = ""  # hyperliquid

    FIELDS = ("api_key", "secret", "password", "uid", "wallet_address", "private_key")

    def __repr__(self) -> str:
        present = [name for name in self.FIELDS if getattr(self, name)]
        return f"Credentials(set={present})"

    __str__ = __repr__

    def as_dict(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in self.FIELDS if getattr(self, name)}

    def secrets(self) -> list[str]:
        """The values to scrub from any text that might leave the process."""
        return [value for value in self.as_dict().values() if len(value) >= 4]

    def __bool__(self) -> bool:
        return bool(self.as_dict())


@dataclass(frozen=True)
class BalanceInfo:
    """An account's margin balance in USD (stablecoins 1:1, other assets converted).

    balance: wallet balance, unrealized PnL excluded; equity: balance + unrealized PnL;
    available: free for new positions; margin_used: initial margin of positions and
    orders; maintenance_margin: what liquidation is measured against (None if unknown).
    """

    balance: Decimal
    equity: Decimal
    available: Decimal
    margin_used: Decimal
    unrealized_pnl: Decimal
    maintenance_margin: Decimal | None = None
    currency: str = "USD"
    assets: dict = field(default_factory=dict)  # {asset: total} as the venue reports them

    @property
    def margin_ratio(self) -> Decimal | None:
        """Maintenance margin / margin balance (ccxt's `marginRatio`, SPEC §4)."""
        if self.maintenance_margin is None or self.equity <= 0:
            return None
        return self.maintenance_margin / self.equity


@dataclass(frozen=True)
class PositionInfo:
    symbol: str
    side: str  # long | short
    size: Decimal  # base quantity, > 0
    entry_price: Decimal
    mark_price: Decimal | None
    notional: Decimal  # |size x mark|
    unrealized_pnl: Decimal
    leverage: Decimal | None = None
    liquidation_price: Decimal | None = None
    margin_ratio: Decimal | None = None
    maintenance_margin: Decimal | None = None
    initial_margin: Decimal | None = None
    hedged: bool = False  # the account runs in hedge mode (both sides may be open)
    timestamp: datetime | None = None
    # When the venue opened the position, where it really says so (paper does; Binance's
    # `updateTime` is the last change, not the opening, so ccxt venues leave it None).
    opened_at: datetime | None = None
    quote: str = "USDT"  # the market's quote currency (SPEC §3: only USD ones sum 1:1)


@dataclass(frozen=True)
class Ticker:
    symbol: str
    last: Decimal
    bid: Decimal | None
    ask: Decimal | None
    high: Decimal | None
    low: Decimal | None
    open: Decimal | None
    volume: Decimal | None  # base volume, 24 h
    quote_volume: Decimal | None
    change_pct: Decimal | None  # percent over 24 h
    timestamp: datetime


@dataclass(frozen=True)
class OrderBook:
    symbol: str
    bids: list[tuple[Decimal, Decimal]]  # (price, amount), best first
    asks: list[tuple[Decimal, Decimal]]
    timestamp: datetime


@dataclass(frozen=True)
class Trade:
    """A public trade, or one of the account's own fills (`fetch_my_trades`)."""

    symbol: str
    id: str
    price: Decimal
    amount: Decimal
    side: str  # buy | sell (the taker's side for public trades)
    timestamp: datetime
    order_id: str | None = None
    fee: Decimal = Decimal(0)  # in USD (other currencies converted); positive is a cost
    realized_pnl: Decimal | None = None  # the venue's figure, fees excluded, if it gives one
    position_side: str | None = None  # long | short in hedge mode
    fee_unconverted: str = ""  # a fee in a currency with no USD price ("0.1 XYZ"), left out of `fee`


@dataclass(frozen=True)
class FundingPayment:
    symbol: str
    amount: Decimal  # received (+) or paid (-), USD
    timestamp: datetime
    id: str = ""


@dataclass(frozen=True)
class Mark:
    symbol: str
    price: Decimal
    received_at: datetime  # when the venue's answer arrived (not when the request left)


@dataclass(frozen=True)
class OrderResult:
    """What an order really did. `status` is one of ORDER_STATUSES: `filled` (all of
    `amount`), `partially_filled`, `new` (acknowledged, 0 filled), `expired`,
    `canceled`, `rejected`; `filled` is the quantity the venue says filled."""

    id: str
    client_order_id: str
    symbol: str
    side: str
    amount: Decimal
    filled: Decimal
    average_price: Decimal | None
    status: str
    reduce_only: bool = True

    @property
    def fully_filled(self) -> bool:
        """Success for a close or reduce: the venue filled the whole amount."""
        return self.status == FILLED and self.amount > 0 and self.filled >= self.amount

    @property
    def remaining(self) -> Decimal:
        return max(Decimal(0), self.amount - self.filled)


@dataclass(frozen=True)
class OpenOrder:
    """An order resting on the venue (issue 15: the pre-trade check counts them).
    `price` is None for an order without a limit price (a stop-market, say)."""

    id: str
    client_order_id: str
    symbol: str
    side: str
    amount: Decimal
    filled: Decimal
    price: Decimal | None
    reduce_only: bool = False

    @property
    def remaining(self) -> Decimal:
        return max(Decimal(0), self.amount - self.filled)


def order_status(*, status: str | None, amount: Decimal, filled: Decimal) -> str:
    """One of ORDER_STATUSES from a ccxt-style status (open, closed, canceled, expired,
    rejected) and the quantities: an open order is `new` or `partially_filled`; a
    closed one `filled`, or `expired` when the venue closed it short of its amount."""
    status = (status or "open").lower()
    if status in (REJECTED, EXPIRED):
        return status
    if status in ("canceled", "cancelled"):
        return CANCELED
    if amount > 0 and filled >= amount:
        return FILLED
    if status in ("open", "new"):
        return PARTIALLY_FILLED if filled > 0 else NOT_FILLED
    return EXPIRED


class Exchange(abc.ABC):
    """One connection to one venue for one account (or anonymous, for market data)."""

    exchange_id: str

    async def __aenter__(self) -> "Exchange":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def load_markets(self) -> SymbolMap:
        """The venue's symbols (cached per process; see `accounts.exchanges.markets`)."""

    async def symbols(self) -> list[str]:
        return (await self.load_markets()).symbols()

    async def check_symbol(self, symbol: str) -> str:
        """The canonical ETRMS symbol, or UnknownSymbol (no call beyond the markets)."""
        markets = await self.load_markets()
        return markets.etrms(markets.unified(symbol))

    @abc.abstractmethod
    async def fetch_balance(self, positions: list[PositionInfo] | None = None) -> BalanceInfo:
        """The account's balance in USD. `positions` already fetched in this session
        spares venues that derive unrealized PnL from positions a second call."""

    @abc.abstractmethod
    async def fetch_positions(self, symbols: list[str] | None = None) -> list[PositionInfo]:
        """Open positions (size > 0), both sides in hedge mode."""

    @abc.abstractmethod
    async def fetch_ticker(self, symbol: str) -> Ticker: ...

    @property
    def has_mark_prices(self) -> bool:
        """Does the venue publish a mark price of its own (distinct from the last trade)?
        The feed then marks positions from `fetch_marks`, not from tickers (SPEC §5)."""
        return False

    async def fetch_marks(self, symbols: list[str]) -> dict[str, Mark]:
        """Mark prices of `symbols`, each stamped with when its answer arrived. Venues
        that can answer for every symbol in one call override this; the default asks
        one ticker per symbol (its last price)."""
        marks = {}
        for symbol in symbols:
            ticker = await self.fetch_ticker(symbol)
            marks[symbol] = Mark(symbol=symbol, price=ticker.last, received_at=timezone.now())
        return marks

    @abc.abstractmethod
    async def fetch_order_book(self, symbol: str, limit: int = 20) -> OrderBook: ...

    @abc.abstractmethod
    async def fetch_trades(self, symbol: str, limit: int = 50) -> list[Trade]:
        """Recent public trades, oldest first."""

    @abc.abstractmethod
    async def fetch_my_trades(self, symbol: str, since: datetime | None = None, limit: int = 500) -> list[Trade]:
        """The account's fills on `symbol` at or after `since`, oldest first."""

    @abc.abstractmethod
    async def fetch_funding_payments(self, symbol: str, since: datetime | None = None) -> list[FundingPayment]:
        """Funding received/paid on `symbol` at or after `since` (empty where none)."""

    @abc.abstractmethod
    async def create_reduce_only_market_order(
        self, symbol: str, side: str, amount: Decimal, *, client_order_id: str, hedged: bool = False
    ) -> OrderResult:
        """A market order that can only shrink a position: `sell` reduces a long, `buy` a
        short. `client_order_id` makes a retry idempotent where the venue supports it."""

    @abc.abstractmethod
    async def fetch_open_orders(self, symbol: str) -> list[OpenOrder]:
        """The account's orders resting on `symbol` (new or partially filled)."""

    @abc.abstractmethod
    async def cancel_all_orders(self, symbol: str) -> int | None:
        """Cancel every open order on `symbol`; how many, when the venue says."""

    @property
    def has_dead_mans_switch(self) -> bool:
        """Can the venue cancel an account's open orders by itself when a countdown runs
        out without being re-armed (Binance USD-M `countdownCancelAll`)?"""
        return False

    async def dead_mans_switch_arm(self, symbol: str, seconds: int) -> None:
        """(Re)start the countdown on `symbol`: unless armed again within `seconds`, the
        venue cancels the account's open orders there; 0 disarms it."""
        raise ExchangeNotSupported(f"{self.exchange_id} has no dead-man's switch.", exchange=self.exchange_id)

    @abc.abstractmethod
    async def watch_ticker(self, symbol: str) -> Ticker:
        """The next ticker update (a stream where the venue has one, else polling)."""

    @abc.abstractmethod
    async def watch_trades(self, symbol: str) -> list[Trade]:
        """The next batch of public trades."""
