"""ETRMS symbols (`BTCUSDT`) <-> ccxt unified symbols, from an exchange's loaded markets.

On the derivatives venues (`DERIVATIVES_VENUES`) a symbol is the linear perpetual
(`BTCUSDT` -> `BTC/USDT:USDT`); everywhere else it is the spot market (`BTC/USDT`).
USD stablecoins are interchangeable quotes (amounts in USDT, USDC and USD are summed
1:1): when a venue lists no `BTCUSDT` market, `BTCUSDT` resolves to `BTCUSDC`, then
`BTCUSD` (Hyperliquid's perpetuals settle in USDC: `BTCUSDT` -> `BTC/USDC:USDC`), and a
market reached that way is named `BTCUSDT` on the way back, so a position reads the same
on every venue. A symbol the venue does not list is `UnknownSymbol` (404), decided here
without another exchange call.
"""

import re
from collections.abc import Iterable, Mapping

from accounts.exchanges.errors import UnknownSymbol

DERIVATIVES_VENUES = frozenset({"binanceusdm", "bybit", "okx", "hyperliquid", "paper"})
USD_QUOTES = ("USDT", "USDC", "USD")
_SEPARATORS = re.compile(r"[/\-_:\s]")
_VALID = re.compile(r"^[A-Z0-9]{2,40}$")


def normalize_symbol(symbol: str) -> str:
    """`btc/usdt`, `BTC-USDT` -> `BTCUSDT`. Raises UnknownSymbol for a malformed one."""
    cleaned = _SEPARATORS.sub("", str(symbol or "")).upper()
    if not _VALID.match(cleaned):
        raise UnknownSymbol(f"Malformed symbol {symbol!r}.")
    return cleaned


def _key(base: str, quote: str) -> str:
    return _SEPARATORS.sub("", f"{base}{quote}").upper()


class SymbolMap:
    """The symbols one exchange lists, both ways. Built once per loaded market set."""

    def __init__(self, exchange_id: str, markets: Mapping[str, Mapping]):
        self.exchange_id = exchange_id
        derivatives = exchange_id in DERIVATIVES_VENUES
        direct: dict[str, str] = {}
        bases: dict[str, str] = {}
        self._markets: dict[str, Mapping] = {}
        for unified, market in markets.items():
            if market.get("active") is False:
                continue
            if derivatives:
                if not (market.get("swap") and market.get("linear")):
                    continue
            elif not market.get("spot"):
                continue
            base, quote = market.get("base"), market.get("quote")
            if not base or not quote:
                continue
            key = _key(base, quote)
            # Two markets with one key (a venue listing duplicates): keep the first seen.
            direct.setdefault(key, unified)
            bases.setdefault(unified, _key(base, ""))
            self._markets[unified] = market
        forward = dict(direct)
        for unified, base in bases.items():
            market = self._markets[unified]
            if str(market.get("quote", "")).upper() not in USD_QUOTES:
                continue
            for quote in USD_QUOTES:
                alias = base + quote
                if alias in forward:
                    continue
                # The first USD quote in preference order that the venue lists.
                for preferred in USD_QUOTES:
                    if base + preferred in direct:
                        forward[alias] = direct[base + preferred]
                        break
        self._forward = forward
        self._reverse: dict[str, str] = {}
        for unified, base in bases.items():
            market = self._markets[unified]
            name = _key(base, market["quote"])
            if str(market["quote"]).upper() in USD_QUOTES:
                for quote in USD_QUOTES:
                    if forward.get(base + quote) == unified:
                        name = base + quote
                        break
            self._reverse[unified] = name

    def unified(self, symbol: str) -> str:
        """`BTCUSDT` -> the ccxt symbol; UnknownSymbol if the venue does not list it."""
        key = normalize_symbol(symbol)
        try:
            return self._forward[key]
        except KeyError:
            raise UnknownSymbol(f"{self.exchange_id} does not list {key}.", exchange=None) from None

    def etrms(self, unified: str) -> str:
        """ccxt symbol -> `BTCUSDT`. A market outside the map keeps base+quote."""
        name = self._reverse.get(unified)
        if name is not None:
            return name
        base, _, rest = unified.partition("/")
        quote = rest.split(":", 1)[0]
        return _key(base, quote)

    def lists_unified(self, unified: str | None) -> bool:
        """Whether a ccxt symbol is one of the markets this map covers."""
        return unified in self._reverse

    def has(self, symbol: str) -> bool:
        try:
            self.unified(symbol)
        except UnknownSymbol:
            return False
        return True

    def market(self, symbol: str) -> Mapping:
        return self._markets[self.unified(symbol)]

    def symbols(self) -> list[str]:
        """Every ETRMS symbol the venue lists (canonical names, sorted)."""
        return sorted(set(self._reverse.values()))

    def unified_many(self, symbols: Iterable[str]) -> list[str]:
        return [self.unified(symbol) for symbol in symbols]
